#include "coordinator/release/plan_template.hpp"

#include <fmt/format.h>

#include <string_view>

#include "coordinator/release/release_plan.hpp"

namespace fabu::coordinator::release {
namespace {

// Text in both languages; the template picks one.
struct Text {
  std::string_view en;
  std::string_view zh;
};

// What to write in each of the nine parts, in the order of PlanSections().
struct SectionText {
  Text what;
  Text placeholder;
  Text emergency_note;         // empty: the same as a normal release
  Text emergency_placeholder;  // empty: the normal placeholder
  std::string_view procedure;  // served beyond §6.2.1(n); empty: none
};

constexpr std::array<SectionText, kPlanSectionCount> kSectionTexts = {{
    {{"Why this release, what it changes", "为什么发布、改变了什么"},
     {"<why this release, what it changes>", "<发布的原因和改变的内容>"},
     {"Emergency: name the fault it fixes and why it cannot wait for a normal release.",
      "紧急发布：写明修复的故障，以及为何不能等待正常发布。"},
     {"<the fault this fixes, and why it cannot wait>", "<修复的故障，以及为何不能等待>"},
     ""},
    {{"Who and what it touches; the go-live notice quotes it",
      "影响哪些用户和系统；上线通知会引用此内容"},
     {"<who and what it touches>", "<影响的用户和系统>"},
     {},
     {},
     "§6.2.6"},
    {{"Departments and people; the go-live notice names them as contacts",
      "参与的部门和人员；上线通知以他们为联系人"},
     {"<departments and people taking part>", "<参与的部门和人员>"},
     {},
     {},
     ""},
    {{"Communication, preparation, filing and training", "沟通、准备、备案和培训安排"},
     {"<communication, preparation, filing and training>", "<沟通、准备、备案和培训安排>"},
     {},
     {},
     ""},
    {{"Test, training, support and on-site work", "测试、培训、客服支持、现场部署等工作计划"},
     {"<test, training, support and on-site work>", "<测试、培训、客服支持、现场部署等工作>"},
     {"Emergency: if the test is to be waived, say so and why; the approver records\n"
      "the reason at `fabu release accept R --waive-test --reason` (procedure §6.2.3).",
      "紧急发布：如需免除测试，写明原因；审批人在\n"
      "`fabu release accept R --waive-test --reason` 时记录理由（流程 §6.2.3）。"},
     {"<what is tested, or why the test is waived; support and on-site work>",
      "<测试内容，或免除测试的原因；客服支持和现场部署工作>"},
     ""},
    {{"What follows a finished deployment", "部署完成后的后续工作"},
     {"<what follows a finished deployment>", "<部署完成后的后续工作>"},
     {"Emergency: include the normal release that follows this fix, if any.",
      "紧急发布：如有后续的正常发布，请一并写明。"},
     {},
     ""},
    {{"How a failure is backed out; the go-live notice quotes it",
      "发布失败时如何退回；上线通知会引用此内容"},
     {"<how a failed release is backed out>", "<发布失败时的退回方法>"},
     {},
     {},
     "§6.1.1(4)"},
    {{"Foreseeable problems and their remedies", "可预见的问题及其解决方法"},
     {"<foreseeable problems and their remedies>", "<可预见的问题及其解决方法>"},
     {},
     {},
     ""},
    {{"The software and hardware baseline", "发布前后的软、硬件配置"},
     {"<software and hardware baseline, e.g. Debian 12, 4 CPUs; c3m-video V1.2.0.3 before>",
      "<软、硬件配置基线，例如 Debian 12，4 核；发布前为 c3m-video V1.2.0.3>"},
     {},
     {},
     "§6.2.8"},
}};

class Writer {
 public:
  Writer(Lang lang, PlanTemplateVariant variant)
      : zh_(lang == Lang::kZhCn), emergency_(variant == PlanTemplateVariant::kEmergency) {}

  bool emergency() const { return emergency_; }
  std::string_view Pick(const Text& text) const { return zh_ ? text.zh : text.en; }

  // "# " before each line of `text`, indented.
  void Comment(int indent, std::string_view text) {
    while (true) {
      const std::size_t newline = text.find('\n');
      const std::string_view line = text.substr(0, newline);
      out_.append(static_cast<std::size_t>(indent), ' ');
      out_ += line.empty() ? "#" : "# " + std::string(line);
      out_ += '\n';
      if (newline == std::string_view::npos) break;
      text.remove_prefix(newline + 1);
    }
  }
  void Comment(int indent, const Text& text) { Comment(indent, Pick(text)); }

  // A field line `key: value` with its comment above; `emergency_note`, when
  // set and this is the emergency variant, is a last comment line.
  void Field(int indent, std::string_view key, std::string_view value, const Text& comment,
             const Text& emergency_note = {}) {
    Comment(indent, comment);
    if (emergency_ && !Pick(emergency_note).empty()) Comment(indent, emergency_note);
    out_.append(static_cast<std::size_t>(indent), ' ');
    out_ += std::string(key) + ":";
    if (!value.empty()) out_ += " " + std::string(value);
    out_ += '\n';
  }

  // A quoted placeholder scalar: "<...>".
  static std::string Quoted(std::string_view text) { return fmt::format("\"{}\"", text); }

  void Blank() { out_ += '\n'; }
  std::string Take() { return std::move(out_); }

 private:
  bool zh_;
  bool emergency_;
  std::string out_;
};

void WriteHeader(Writer& w) {
  w.Comment(
      0, Text{
             "Release plan (发布方案, procedure §6.2.1), printed by `fabu release template`.\n"
             "Replace every <...> placeholder, then create the draft release:\n"
             "  fabu release create --file plan.yaml\n"
             "Every field is explained in docs/plan.md. Unknown fields are refused.\n"
             "title, product, version and category are always required; the rest may\n"
             "stay empty in a draft, and `fabu release submit` names all that is missing.",
             "发布方案（流程 §6.2.1），由 `fabu release template` 生成。\n"
             "请替换每一处 <...> 占位内容，然后创建发布草稿：\n"
             "  fabu release create --file plan.yaml\n"
             "各字段的说明见 docs/plan.md。字段名是固定格式，不可翻译或修改；未知字段会被拒绝。\n"
             "title、product、version、category 始终必填；其余字段在草稿中可暂时留空，\n"
             "`fabu release submit` 提交评审时会列出所有缺少的内容。",
         });
  if (w.emergency()) {
    w.Comment(0,
              Text{
                  "\n"
                  "EMERGENCY RELEASE (category emergency, procedure §6.1.1(8)). The plan needs\n"
                  "every field a normal release needs: none is waived. What differs:\n"
                  "- an approver may accept it without a passed test report:\n"
                  "  fabu release accept R --waive-test --reason \"...\" (procedure §6.2.3; the\n"
                  "  waiver is recorded and flagged in the release's records forever);\n"
                  "- an approver may let it start or continue inside a freeze period:\n"
                  "  fabu release override-freeze R --reason \"...\" (procedure §6.2.7);\n"
                  "- it counts in the report's emergency share (procedure §4.6);\n"
                  "- this template waits at a gate after each wave (between_waves: gate).",
                  "\n"
                  "紧急发布（发布类别 emergency，流程 §6.1.1(8)）。发布方案的字段与正常发布\n"
                  "完全相同，没有任何字段可以省略。不同之处：\n"
                  "- 审批人可在没有通过的发布测试报告时验收（免除测试）：\n"
                  "  fabu release accept R --waive-test --reason \"...\"（流程 §6.2.3；免测试\n"
                  "  会被记录，并在发布记录中永久标注）；\n"
                  "- 审批人可允许其在冻结期内开始或继续发布：\n"
                  "  fabu release override-freeze R --reason \"...\"（流程 §6.2.7）；\n"
                  "- 计入报告中的紧急发布占比（流程 §4.6）；\n"
                  "- 本模板在每批之后设置控制点（between_waves: gate）。",
              });
  }
  w.Blank();
}

void WriteRelease(Writer& w) {
  w.Field(0, "title",
          Writer::Quoted(w.Pick({"<a one-line title, e.g. Video gateway 1.3: HLS low-latency mode>",
                                 "<一行标题，例如 视频网关 1.3：HLS 低延迟模式>"})),
          {"The release's title, one line. Required; no default. Procedure §6.2.1.",
           "发布标题，一行。必填，无默认值。流程 §6.2.1。"});
  w.Field(0, "product",
          Writer::Quoted(
              w.Pick({"<the package name, e.g. c3m-video>", "<软件包名称，例如 c3m-video>"})),
          {"The product: the package name (letters, digits, '.', '_', '-'); every package\n"
           "below must carry it as its name. Required; no default. Procedure §6.1.3.",
           "产品：软件包名称（字母、数字、'.'、'_'、'-'）；下面每个软件包都必须以此为名称。\n"
           "必填，无默认值。流程 §6.1.3。"});
  w.Field(0, "version",
          Writer::Quoted(w.Pick({"<Va.b.c.d, e.g. V1.3.0.12>", "<Va.b.c.d，例如 V1.3.0.12>"})),
          {"The version, Va.b.c.d (a major, b feature, c specification, d build); it must\n"
           "follow the product's last released version (`fabu version next`, `fabu version\n"
           "check`) and every package must carry it. Required; no default. Procedure §6.1.3.",
           "版本号 Va.b.c.d（a 主版本，b 功能，c 规格，d 构建）；必须接续该产品上次发布的版本\n"
           "（`fabu version next`、`fabu version check`），每个软件包都必须带有此版本。\n"
           "必填，无默认值。流程 §6.1.3。"});
  if (w.emergency()) {
    w.Field(0, "category", "emergency",
            {"The release category: emergency. It allows the test waiver (§6.2.3) and the\n"
             "freeze override (§6.2.7); every other rule is that of a normal release.\n"
             "Required; no default. Procedure §6.1.1(8).",
             "发布类别：emergency（紧急发布）。允许免除测试（§6.2.3）和越过冻结期（§6.2.7）；\n"
             "其他规则与正常发布相同。必填，无默认值。流程 §6.1.1(8)。"});
  } else {
    w.Field(0, "category", "minor",
            {"The release category, one of the coordinator's config.json `categories` (a new\n"
             "coordinator has major, minor, patch, emergency). Required; no default (this\n"
             "template writes minor). Procedure §6.1.1(8). An urgent fix: fabu release\n"
             "template --emergency.",
             "发布类别，取自协调器 config.json 的 `categories`（新协调器为 major、minor、patch、\n"
             "emergency）。必填，无默认值（本模板填写 minor）。流程 §6.1.1(8)。紧急修复请用\n"
             "fabu release template --emergency。"});
  }
  w.Field(0, "change_refs",
          "[" +
              Writer::Quoted(w.Pick(
                  {"<change request id, e.g. CHG-2026-0113>", "<变更单号，例如 CHG-2026-0113>"})) +
              "]",
          {"The change requests this release answers to, a list. At submit: at least one;\n"
           "no default. Procedure §1.4.",
           "本次发布对应的变更单，列表。提交时至少一个，无默认值。流程 §1.4。"},
          {"Emergency: an emergency release answers to a change request too.",
           "紧急发布：同样必须对应变更单。"});
  w.Blank();
}

void WritePlanSections(Writer& w) {
  w.Field(0, "plan", "",
          {"The nine parts of the release plan (发布方案), in the order of procedure §6.2.1.\n"
           "Each is text (Markdown is fine; use a YAML block `|` for several lines) and\n"
           "each is required at submit; no defaults. `fabu release export R --doc plan`\n"
           "prints them under the procedure's titles.",
           "发布方案的九个部分，顺序同流程 §6.2.1。每部分为文本（可用 Markdown；多行文本\n"
           "请用 YAML 的 `|` 块），提交时均为必填，无默认值。\n"
           "`fabu release export R --doc plan` 按流程的标题输出。"});
  for (std::size_t i = 0; i < kPlanSectionCount; ++i) {
    const PlanSectionInfo& info = PlanSections()[i];
    const SectionText& text = kSectionTexts[i];
    const std::string comment_en =
        fmt::format("{}. {} ({}).\n{}.\nRequired at submit; no default. Procedure §6.2.1({}){}{}.",
                    i + 1, info.title_en, info.title_zh, text.what.en, i + 1,
                    text.procedure.empty() ? "" : ", ", text.procedure);
    const std::string comment_zh = fmt::format(
        "{}. {}\n{}。\n提交时必填，无默认值。流程 §6.2.1({}){}{}。", i + 1, info.title_zh,
        text.what.zh, i + 1, text.procedure.empty() ? "" : "、", text.procedure);
    const Text placeholder = w.emergency() && !w.Pick(text.emergency_placeholder).empty()
                                 ? text.emergency_placeholder
                                 : text.placeholder;
    w.Field(2, info.key, Writer::Quoted(w.Pick(placeholder)), {comment_en, comment_zh},
            text.emergency_note);
  }
  w.Blank();
}

void WriteTargets(Writer& w) {
  w.Field(0, "packages",
          "[" +
              Writer::Quoted(w.Pick({"<the id printed by fabu package upload>",
                                     "<fabu package upload 打印的软件包编号>"})) +
              "]",
          {"The packages, a list of ids: 64 lower-case hex digits each, as `fabu package\n"
           "upload` prints them; each must carry `product` as its name and `version` as its\n"
           "version. At submit: at least one; no default. Procedure §1.1, §1.3.",
           "软件包列表：每个编号为 64 位小写十六进制，即 `fabu package upload` 打印的编号；\n"
           "每个软件包的名称须为 product，版本须为 version。提交时至少一个，无默认值。\n"
           "流程 §1.1、§1.3。"});
  w.Field(0, "targets", "",
          {"The target hosts, chosen by their labels. Procedure §6.2.4.",
           "目标主机，按标签选择。流程 §6.2.4。"});
  w.Field(2, "selector",
          Writer::Quoted(w.Pick({"<labels every target carries, k=v,k2=v2, e.g. app=c3m-video>",
                                 "<目标主机须带有的标签 k=v,k2=v2，例如 app=c3m-video>"})),
          {"Labels k=v,k2=v2; a target carries every one. Of those, hosts that also carry\n"
           "env=test are the test hosts (`fabu release test`), env=production the production\n"
           "hosts (`fabu release start`). At submit; no default. Procedure §6.2.4.",
           "标签 k=v,k2=v2，目标主机须带有全部标签。其中另带 env=test 的是测试主机\n"
           "（`fabu release test`），另带 env=production 的是生产主机（`fabu release start`）。\n"
           "提交时必填，无默认值。流程 §6.2.4。"});
  w.Field(2, "late_joiners", "false",
          {"true or false: a production host that comes to match the selector while the\n"
           "release is deploying (enrolled or labelled after `fabu release start`) joins the\n"
           "next wave not started yet, or a catch-up wave after the last. With false it is\n"
           "listed as \"not in this release\". Default false. Procedure §6.2.4.",
           "true 或 false：发布部署期间新符合 selector 的生产主机（在 `fabu release start`\n"
           "之后注册或打上标签）加入尚未开始的下一批次，或最后一批之后的补充批次。为 false\n"
           "时它列为“不在本次发布中”。默认 false。流程 §6.2.4。"});
  w.Field(0, "reviewers",
          "[" +
              Writer::Quoted(w.Pick({"<an approver's user name, e.g. wang.approver>",
                                     "<审批人的用户名，例如 wang.approver>"})) +
              "]",
          {"The reviewers: user names with role approver. Every one must approve; the owner\n"
           "(who creates the release) never approves. At submit: at least one; no default.\n"
           "Procedure §6.2.2.",
           "评审人：角色为 approver 的用户名。每位评审人都须批准；发布负责人（创建发布的人）\n"
           "不能批准。提交时至少一个，无默认值。流程 §6.2.2。"});
  w.Blank();
}

void WriteGoLive(Writer& w) {
  w.Field(0, "golive", "",
          {"The go-live plan (上线计划). Needed before `fabu release approve-golive` and\n"
           "`fabu release schedule`; it may be left out now and set later with `fabu release\n"
           "update` (then an approver reviews it on its own: approve-golive).\n"
           "Procedure §6.2.4, §6.2.5.",
           "上线计划。`fabu release approve-golive` 和 `fabu release schedule` 之前必须有；\n"
           "可以先省略，之后用 `fabu release update` 设置（此时由审批人单独评审：\n"
           "approve-golive）。流程 §6.2.4、§6.2.5。"});
  w.Field(2, "window", "",
          {"The release window: nothing is deployed outside it. Times are RFC 3339 with the\n"
           "UTC offset of the time zone you mean (+08:00 is China Standard Time); a window\n"
           "that has already ended is refused. Required; no default. Procedure §6.2.4, §6.2.7.",
           "发布窗口：窗口之外不部署任何主机。时间为 RFC 3339 格式，带所指时区的 UTC 偏移\n"
           "（+08:00 即北京时间）；已结束的窗口会被拒绝。必填，无默认值。流程 §6.2.4、§6.2.7。"},
          {"Emergency: the window may open soon, but a freeze period inside it needs an\n"
           "approver's `fabu release override-freeze R --reason` (procedure §6.2.7).",
           "紧急发布：窗口可以很快开始，但窗口内的冻结期需要审批人执行\n"
           "`fabu release override-freeze R --reason`（流程 §6.2.7）。"});
  w.Field(4, "start",
          Writer::Quoted(
              w.Pick({"<window start, RFC 3339 with its offset, e.g. 2027-01-15T01:00:00+08:00>",
                      "<窗口开始时间，RFC 3339 带时区偏移，例如 2027-01-15T01:00:00+08:00>"})),
          {"When the window opens. Required; no default.", "窗口开始时间。必填，无默认值。"});
  w.Field(
      4, "end",
      Writer::Quoted(w.Pick({"<window end, after start, e.g. 2027-01-15T05:00:00+08:00>",
                             "<窗口结束时间，须晚于开始时间，例如 2027-01-15T05:00:00+08:00>"})),
      {"When the window closes, after start. Required; no default.",
       "窗口结束时间，须晚于开始时间。必填，无默认值。"});
  w.Field(2, "waves", R"(["1", "25%", "100%"])",
          {"The waves: cumulative sizes, each a count (\"1\") or a percent (\"25%\") of the\n"
           "targets, increasing; the last is \"100%\" (or a count covering every target).\n"
           "Each wave adds at least one host. Required; no default. Procedure §6.2.4.",
           "发布批次：累计规模，每项为主机数（\"1\"）或目标主机的百分比（\"25%\"），递增；\n"
           "最后一项为 \"100%\"（或覆盖全部目标主机的数量）。每批至少增加一台主机。\n"
           "必填，无默认值。流程 §6.2.4。"});
  w.Field(2, "max_failures", R"("10%")",
          {"The failure threshold of each wave: a count (\"2\") or a percent (\"10%\") of that\n"
           "wave's hosts, rounded down; a wave with more failures halts the rollout.\n"
           "Required; no default. Procedure §6.1.1(4).",
           "每批允许失败数：数量（\"2\"）或该批主机的百分比（\"10%\"，向下取整）；某批失败数\n"
           "超过此值即停止发布。必填，无默认值。流程 §6.1.1(4)。"});
  w.Field(2, "between_waves", w.emergency() ? "gate" : "5m",
          {"Between waves: a pause (30s, 5m, 1h, 2d) or gate, a control point: the rollout\n"
           "waits after each wave until a release manager or approver runs\n"
           "`fabu release gate R --confirm`. Required; no default. Procedure §4.5.",
           "批次之间：等待时长（30s、5m、1h、2d）或 gate（控制点）：每批之后暂停，直到发布\n"
           "经理或审批人执行 `fabu release gate R --confirm`。必填，无默认值。流程 §4.5。"},
          {"Emergency: gate, so that a person looks at each wave before the next; the test\n"
           "may have been waived.",
           "紧急发布：设为 gate，每批由人确认后再继续；测试可能已被免除。"});
  w.Field(2, "host_timeout", "15m",
          {"A host still unfinished after this long counts as failed (timeout). A duration\n"
           "> 0. Required; no default. Procedure §6.2.4.",
           "单台主机超时：超过此时长仍未完成的主机记为失败（timeout）。时长须大于 0。\n"
           "必填，无默认值。流程 §6.2.4。"});
  w.Field(2, "auto_rollback", "true",
          {"true: a wave over max_failures rolls every host that moved back to its previous\n"
           "release; false: a person decides (`fabu release rollback R`). Required; no\n"
           "default. Procedure §6.1.1(4).",
           "自动回退：true 时，某批失败数超过 max_failures 即把所有已升级的主机退回到之前的\n"
           "版本；false 时由人决定（`fabu release rollback R`）。必填，无默认值。\n"
           "流程 §6.1.1(4)。"});
  w.Field(2, "observe", R"("0")",
          {"How long each host keeps re-running its health check after it succeeded, e.g.\n"
           "10m. Optional; default \"0\" (no observation). Procedure §6.2.7.",
           "观察期：每台主机成功后继续重复健康检查的时长，例如 10m。可选，默认 \"0\"\n"
           "（不观察）。流程 §6.2.7。"});
  w.Field(2, "observe_interval", R"("0")",
          {"How often the health check re-runs during observe, e.g. 30s: > 0 and not longer\n"
           "than observe when observe is set. Required with observe; default \"0\".\n"
           "Procedure §6.2.7.",
           "观察期内重复健康检查的间隔，例如 30s：设置 observe 时须大于 0 且不超过 observe。\n"
           "设置 observe 时必填；默认 \"0\"。流程 §6.2.7。"});
  w.Field(2, "checks", "[]",
          {"Checks on metrics measured after each wave, before the next starts: a failed one\n"
           "fails the wave, an inconclusive one pauses the rollout (docs/plan.md \"Checks on\n"
           "metrics\"), e.g. [{name: error-ratio, type: prometheus, query: '...',\n"
           "condition: \"< 0.01\", interval: 30s, count: 3}]. Optional; default none.\n"
           "Procedure §6.1.1(4), §4.5.",
           "指标检查：每批之后、下一批开始之前测量；失败即该批失败，无法判断则暂停发布\n"
           "（docs/plan.md \"Checks on metrics\"），例如 [{name: error-ratio, type: prometheus,\n"
           "query: '...', condition: \"< 0.01\", interval: 30s, count: 3}]。可选，默认无。\n"
           "流程 §6.1.1(4)、§4.5。"});
}

}  // namespace

std::string PlanTemplate(Lang lang, PlanTemplateVariant variant) {
  Writer w(lang, variant);
  WriteHeader(w);
  WriteRelease(w);
  WritePlanSections(w);
  WriteTargets(w);
  WriteGoLive(w);
  return w.Take();
}

}  // namespace fabu::coordinator::release
