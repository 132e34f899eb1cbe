#include "coordinator/release/release_plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "coordinator/release/digest.hpp"

namespace fabu::coordinator::release {
bool IsBlank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

namespace {

using nlohmann::json;

bool IsLabelKey(std::string_view key) {
  if (key.empty() || key.size() > 63) return false;
  const char first = key.front();
  if (!((first >= 'a' && first <= 'z') || (first >= '0' && first <= '9'))) return false;
  return key.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789._/-") ==
         std::string_view::npos;
}

bool IsLabelValue(std::string_view value) {
  return !value.empty() && value.size() <= 253 &&
         value.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
             std::string_view::npos;
}

bool IsProductName(std::string_view name) {
  return !name.empty() && name.size() <= 128 &&
         name.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
             std::string_view::npos;
}

// Fails naming the first element that appears twice.
Result<void> CheckNoDuplicates(const std::vector<std::string>& items, const std::string& path) {
  std::set<std::string_view> seen;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (!seen.insert(items[i]).second) {
      return FieldError(IndexPath(path, i), fmt::format("\"{}\" is listed twice", items[i]));
    }
  }
  return {};
}

Result<std::string> RequiredString(const ObjectReader& reader, std::string_view key,
                                   std::string_view example) {
  auto value = reader.String(key);
  if (!value) return std::unexpected(value.error());
  if (!*value || IsBlank(**value)) {
    return FieldError(reader.PathOf(key), fmt::format("is required ({})", example));
  }
  return std::move(**value);
}

Result<std::vector<std::string>> OptionalList(const ObjectReader& reader, std::string_view key) {
  auto list = reader.StringList(key);
  if (!list) return std::unexpected(list.error());
  if (!*list) return std::vector<std::string>();
  if (auto unique = CheckNoDuplicates(**list, reader.PathOf(key)); !unique) {
    return std::unexpected(unique.error());
  }
  return std::move(**list);
}

}  // namespace

const std::array<PlanSectionInfo, kPlanSectionCount>& PlanSections() {
  static const std::array<PlanSectionInfo, kPlanSectionCount> kSections = {{
      {PlanSection::kPurpose, "purpose", "发布的目的和背景", "Purpose and background"},
      {PlanSection::kScope, "scope", "发布影响范围", "Scope of impact"},
      {PlanSection::kParticipants, "participants", "参与部门及人员",
       "Participating departments and people"},
      {PlanSection::kCommunication, "communication", "交流、准备、备案和培训",
       "Communication, preparation, filing and training"},
      {PlanSection::kWorkPlan, "work_plan", "工作计划（含上线规划）",
       "Work plan, including the go-live plan"},
      {PlanSection::kFollowUp, "follow_up", "部署完成的后续工作计划", "Follow-up after deployment"},
      {PlanSection::kRollbackPlan, "rollback_plan", "发布失败情况下的退回方案",
       "Rollback plan if the release fails"},
      {PlanSection::kKnownIssues, "known_issues", "可预见问题以及相应的解决方法",
       "Foreseeable problems and their solutions"},
      {PlanSection::kBaseline, "baseline", "与软、硬件有关的配置基线",
       "Software and hardware configuration baseline"},
  }};
  return kSections;
}

Result<TargetSelector> TargetSelector::Parse(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return Fail(ErrorCode::kInvalidArgument,
                fmt::format("selector \"{}\" is not \"key=value,key2=value2\": {}", text, why));
  };
  if (text.empty()) return bad("it is empty");
  TargetSelector selector;
  std::set<std::string, std::less<>> keys;
  std::string_view rest = text;
  while (true) {
    const std::size_t comma = rest.find(',');
    const std::string_view term = rest.substr(0, comma);
    const std::size_t equals = term.find('=');
    if (equals == std::string_view::npos) {
      return bad(fmt::format("\"{}\" has no '='", term));
    }
    const std::string_view key = term.substr(0, equals);
    const std::string_view value = term.substr(equals + 1);
    if (!IsLabelKey(key)) {
      return bad(
          fmt::format("label key \"{}\" must be lower-case letters, digits, '.', '_', "
                      "'/' or '-', starting with a letter or digit",
                      key));
    }
    if (!IsLabelValue(value)) {
      return bad(fmt::format("label value \"{}\" must be letters, digits, '.', '_' or '-'", value));
    }
    if (!keys.emplace(key).second) return bad(fmt::format("label \"{}\" appears twice", key));
    selector.labels.emplace_back(std::string(key), std::string(value));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return selector;
}

std::string TargetSelector::ToString() const {
  std::string out;
  for (const auto& [key, value] : labels) {
    if (!out.empty()) out += ',';
    out += key + "=" + value;
  }
  return out;
}

Result<ReleasePlan> ParseReleasePlan(std::string_view text, const PlanParseOptions& options) {
  auto document = ParseDocument(text, options.format);
  if (!document) return std::unexpected(document.error());
  return ReleasePlanFromJson(*document, options);
}

Result<ReleasePlan> ReleasePlanFromJson(const json& value, const PlanParseOptions& options) {
  auto reader = ObjectReader::Open(value, "");
  if (!reader) return std::unexpected(reader.error());
  if (auto known = reader->CheckKnown({"title", "product", "version", "category", "change_refs",
                                       "plan", "packages", "targets", "reviewers", "golive"});
      !known) {
    return std::unexpected(known.error());
  }
  ReleasePlan plan;

  auto title = RequiredString(*reader, "title", "a one-line title");
  if (!title) return std::unexpected(title.error());
  plan.title = std::move(*title);

  auto product = RequiredString(*reader, "product", "the product name, e.g. c3m-video");
  if (!product) return std::unexpected(product.error());
  if (!IsProductName(*product)) {
    return FieldError("product",
                      fmt::format("\"{}\" must be letters, digits, '.', '_' or '-'", *product));
  }
  plan.product = std::move(*product);

  auto version_text = RequiredString(*reader, "version", "Va.b.c.d, e.g. V1.3.0.12");
  if (!version_text) return std::unexpected(version_text.error());
  auto version = protocol::Version::Parse(*version_text);
  if (!version) return std::unexpected(std::move(version.error()).WithContext("version"));
  plan.version = *version;

  std::string known_categories;
  for (const std::string& name : options.categories) {
    known_categories += (known_categories.empty() ? "" : ", ") + name;
  }
  auto category = RequiredString(*reader, "category", "one of " + known_categories);
  if (!category) return std::unexpected(category.error());
  if (std::find(options.categories.begin(), options.categories.end(), *category) ==
      options.categories.end()) {
    return FieldError("category", fmt::format("\"{}\" is not a release category (one of {})",
                                              *category, known_categories));
  }
  plan.category = std::move(*category);

  auto change_refs = OptionalList(*reader, "change_refs");
  if (!change_refs) return std::unexpected(change_refs.error());
  plan.change_refs = std::move(*change_refs);

  if (const json* sections = reader->Find("plan"); sections != nullptr) {
    auto section_reader = ObjectReader::Open(*sections, "plan");
    if (!section_reader) return std::unexpected(section_reader.error());
    if (auto known = section_reader->CheckKnown({"purpose", "scope", "participants",
                                                 "communication", "work_plan", "follow_up",
                                                 "rollback_plan", "known_issues", "baseline"});
        !known) {
      return std::unexpected(known.error());
    }
    for (const PlanSectionInfo& info : PlanSections()) {
      auto text = section_reader->String(info.key);
      if (!text) return std::unexpected(text.error());
      if (*text) plan.Section(info.section) = std::move(**text);
    }
  }

  auto packages = OptionalList(*reader, "packages");
  if (!packages) return std::unexpected(packages.error());
  for (std::size_t i = 0; i < packages->size(); ++i) {
    if (!IsSha256Hex((*packages)[i])) {
      return FieldError(IndexPath("packages", i),
                        fmt::format("\"{}\" is not a package id (64 lower-case hex digits, the "
                                    "SHA-256 that `fabu package upload` prints)",
                                    (*packages)[i]));
    }
  }
  plan.packages = std::move(*packages);

  if (const json* targets = reader->Find("targets"); targets != nullptr) {
    auto target_reader = ObjectReader::Open(*targets, "targets");
    if (!target_reader) return std::unexpected(target_reader.error());
    if (auto known = target_reader->CheckKnown({"selector", "late_joiners"}); !known) {
      return std::unexpected(known.error());
    }
    auto selector_text = target_reader->String("selector");
    if (!selector_text) return std::unexpected(selector_text.error());
    // An empty selector is a draft that has not chosen its targets yet.
    if (*selector_text && !(*selector_text)->empty()) {
      auto selector = TargetSelector::Parse(**selector_text);
      if (!selector)
        return std::unexpected(std::move(selector.error()).WithContext("targets.selector"));
      plan.targets = std::move(*selector);
    }
    auto late_joiners = target_reader->Bool("late_joiners");
    if (!late_joiners) return std::unexpected(late_joiners.error());
    plan.late_joiners = late_joiners->value_or(false);
  }

  auto reviewers = OptionalList(*reader, "reviewers");
  if (!reviewers) return std::unexpected(reviewers.error());
  plan.reviewers = std::move(*reviewers);

  if (const json* golive = reader->Find("golive"); golive != nullptr) {
    auto parsed = GoLivePlanFromJson(*golive, "golive");
    if (!parsed) return std::unexpected(parsed.error());
    plan.golive = std::move(*parsed);
  }
  return plan;
}

namespace {

// A text that is still a placeholder of `fabu release template`: "<...>".
bool IsPlaceholder(std::string_view text) {
  if (IsBlank(text)) return false;
  const std::size_t first = text.find_first_not_of(" \t\r\n");
  const std::size_t last = text.find_last_not_of(" \t\r\n");
  return text[first] == '<' && text[last] == '>';
}

}  // namespace

Result<void> CheckSubmittable(const ReleasePlan& plan) {
  std::vector<std::string> missing;
  for (const PlanSectionInfo& info : PlanSections()) {
    if (IsBlank(plan.Section(info.section))) {
      missing.push_back(
          fmt::format("plan.{} ({} / {}) is empty", info.key, info.title_zh, info.title_en));
    } else if (IsPlaceholder(plan.Section(info.section))) {
      missing.push_back(fmt::format("plan.{} ({} / {}) is still the template's placeholder",
                                    info.key, info.title_zh, info.title_en));
    }
  }
  if (IsPlaceholder(plan.title)) missing.push_back("title is still the template's placeholder");
  for (const std::string& ref : plan.change_refs) {
    if (IsPlaceholder(ref)) {
      missing.push_back("change_refs: " + ref + " is still the template's placeholder");
    }
  }
  for (const std::string& reviewer : plan.reviewers) {
    if (IsPlaceholder(reviewer)) {
      missing.push_back("reviewers: " + reviewer + " is still the template's placeholder");
    }
  }
  if (plan.packages.empty()) missing.push_back("packages: at least one package is needed");
  if (!plan.targets) missing.push_back("targets.selector: the target hosts are not chosen");
  if (plan.change_refs.empty()) {
    missing.push_back("change_refs: at least one change request is needed (procedure §6.1.1(6))");
  }
  if (plan.reviewers.empty()) missing.push_back("reviewers: at least one reviewer is needed");
  if (missing.empty()) return {};
  std::string message = "not ready to submit: ";
  for (std::size_t i = 0; i < missing.size(); ++i) {
    message += (i == 0 ? "" : "; ") + missing[i];
  }
  return Fail(ErrorCode::kFailedPrecondition, std::move(message));
}

json ReleaseContentToJson(const ReleasePlan& plan) {
  json sections = json::object();
  for (const PlanSectionInfo& info : PlanSections()) {
    sections[std::string(info.key)] = plan.Section(info.section);
  }
  json targets = {{"selector", plan.targets ? plan.targets->ToString() : std::string()}};
  // Only when true: the digests of plans written before the field stay as they were.
  if (plan.late_joiners) targets["late_joiners"] = true;
  return json{
      {"title", plan.title},
      {"product", plan.product},
      {"version", plan.version.ToString()},
      {"category", plan.category},
      {"change_refs", plan.change_refs},
      {"plan", std::move(sections)},
      {"packages", plan.packages},
      {"targets", std::move(targets)},
      {"reviewers", plan.reviewers},
  };
}

json ReleasePlanToJson(const ReleasePlan& plan) {
  json out = ReleaseContentToJson(plan);
  if (plan.golive) out["golive"] = GoLivePlanToJson(*plan.golive);
  return out;
}

Result<std::string> ContentDigest(const ReleasePlan& plan) {
  return Sha256Hex(CanonicalJsonText(ReleaseContentToJson(plan)));
}

}  // namespace fabu::coordinator::release
