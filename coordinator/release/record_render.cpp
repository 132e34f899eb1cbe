#include "coordinator/release/record_render.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "coordinator/release/plan_export.hpp"

namespace fabu::coordinator::release {
namespace {

struct Terms {
  std::string_view en;
  std::string_view zh;
};

// The procedure's terms (procedure §4.6, §6.2, §8) beside the English ones.
const std::map<std::string_view, Terms, std::less<>>& LabelTable() {
  static const std::map<std::string_view, Terms, std::less<>> kTable = {
      // Documents (§8).
      {"doc.plan", {"Release plan", "发布方案"}},
      {"doc.test_report", {"Release test report", "发布测试报告"}},
      {"doc.release_report", {"Release report", "发布报告"}},
      {"doc.upgrade_records", {"Upgrade record table", "升级记录表"}},
      {"doc.period_report", {"Release management report", "发布管理报告"}},
      // Period report.
      {"period", {"Period", "统计周期"}},
      {"time_zone", {"Time zone", "时区"}},
      {"kpi", {"Key indicators", "关键指标"}},
      {"metric", {"Indicator", "指标"}},
      {"value", {"Value", "数值"}},
      {"closed", {"Releases closed", "已关闭发布数"}},
      {"by_category", {"Releases by category", "按发布类别统计"}},
      {"success", {"Successful", "成功"}},
      {"partial", {"Partial", "部分成功"}},
      {"failed", {"Failed", "失败"}},
      {"rolled_back", {"Rolled back", "已回退"}},
      {"cancelled", {"Cancelled", "已取消"}},
      {"success_ratio", {"Success ratio", "发布成功率"}},
      {"timeliness_ratio", {"Timeliness ratio", "发布及时率"}},
      {"emergency_share", {"Emergency share", "紧急发布占比"}},
      {"rollbacks", {"Rollbacks", "回退次数"}},
      {"test_waived", {"Emergency releases without testing", "免测试的紧急发布"}},
      {"incidents", {"Incidents caused by releases", "发布引起的事件"}},
      {"incidents_by_severity", {"Incidents by severity", "事件（按级别）"}},
      {"rejected_releases", {"Releases rejected in review", "评审未通过的发布"}},
      {"rejections", {"Rejections", "评审驳回次数"}},
      {"avg_review", {"Average time in review", "平均评审时长"}},
      {"avg_testing", {"Average time in testing", "平均测试时长"}},
      {"avg_deployment", {"Average time in deployment", "平均部署时长"}},
      {"closed_releases", {"Releases closed in the period", "本期关闭的发布"}},
      {"failed_review", {"Failed-release review", "失败发布回顾"}},
      {"coming_month", {"Releases scheduled for the coming month", "下月发布计划"}},
      {"trend", {"Month by month (last 12 months)", "近12个月趋势"}},
      {"month", {"Month", "月份"}},
      {"none", {"None.", "无。"}},
      // Release fields.
      {"release", {"Release", "发布编号"}},
      {"title", {"Title", "标题"}},
      {"product", {"Product", "产品"}},
      {"version", {"Version", "版本"}},
      {"category", {"Category", "发布类别"}},
      {"state", {"State", "状态"}},
      {"owner", {"Release manager", "发布负责人"}},
      {"close_code", {"Close code", "关闭代码"}},
      {"closed_at", {"Closed", "关闭时间"}},
      {"closed_by", {"Closed by", "关闭人"}},
      {"notes", {"Closing notes", "关闭说明"}},
      {"review_notes", {"Review notes", "复盘说明"}},
      {"in_window", {"In window", "窗口内完成"}},
      {"window", {"Window", "发布窗口"}},
      {"yes", {"yes", "是"}},
      {"no", {"no", "否"}},
      // Incidents.
      {"incident", {"Incident", "事件编号"}},
      {"severity", {"Severity", "级别"}},
      {"summary", {"Summary", "摘要"}},
      {"host", {"Host", "主机"}},
      {"source", {"Source", "来源"}},
      {"opened", {"Opened", "发生时间"}},
      // Release report.
      {"timeline", {"Timeline", "发布过程记录"}},
      {"time", {"Time", "时间"}},
      {"action", {"Action", "操作"}},
      {"actor", {"Actor", "操作人"}},
      {"role", {"Role", "角色"}},
      {"from", {"From", "原状态"}},
      {"to", {"To", "新状态"}},
      {"note", {"Note", "说明"}},
      {"waves", {"Waves", "发布批次"}},
      {"wave", {"Wave", "批次"}},
      {"hosts", {"Hosts", "主机数"}},
      {"threshold", {"Failures tolerated", "允许失败数"}},
      {"succeeded", {"Succeeded", "成功"}},
      {"in_flight", {"In flight", "进行中"}},
      {"step", {"Step", "步骤"}},
      {"result", {"Result", "结果"}},
      {"message", {"Message", "信息"}},
      {"output", {"Hook output", "脚本输出"}},
      {"progress", {"Progress per wave", "各批次进度"}},
      {"checks", {"Checks on metrics", "指标检查"}},
      {"preflight",
       {"Pre-flight: could each production host install it now",
        "上线前预检：各生产主机现在能否安装"}},
      {"preflight_override", {"Overridden by an approver", "审批人已放行"}},
      {"check", {"Check", "检查项"}},
      {"detail", {"Detail", "说明"}},
      {"dry_run", {"dry run: recorded, never acted on", "演练：只记录，不执行"}},
      {"host_results", {"Hosts and results", "主机及结果"}},
      {"cmdb", {"CMDB update", "CMDB更新"}},
      {"records", {"Upgrade records", "升级记录"}},
      {"baseline", {"Configuration baseline", "配置基线"}},
      {"app", {"Application", "应用"}},
      {"baseline_before", {"Before the rollout", "发布前"}},
      {"baseline_after", {"At close", "关闭时"}},
      {"baseline_outside",
       {"Hosts matching the targets at close that were not in this release (enrolled or "
        "matching since it started; not deployed to):",
        "关闭时符合发布范围但未纳入本次发布的主机（发布开始后才注册或才符合范围，未部署）："}},
      {"baseline_not_on_version",
       {"Hosts matching the targets that are not on this release's version at close, and why:",
        "关闭时符合发布范围但未处于本次发布版本的主机及原因："}},
      {"deliveries", {"Deliveries", "外部推送"}},
      {"notices", {"Notices", "发布通知"}},
      {"rollback", {"Rollback", "回退"}},
      {"rollback_failed", {"Rollback failed", "回退失败"}},
      {"timeout", {"Timed out", "超时"}},
      {"host_removed", {"Host removed", "主机已移除"}},
      {"subscription", {"Subscription", "订阅"}},
      {"event", {"Event", "事件"}},
      {"attempts", {"Attempts", "尝试次数"}},
      {"last_error", {"Last error", "最近错误"}},
      {"given_up", {"Given up", "已放弃"}},
      {"notices_given_up", {"Notices given up (never delivered)", "未能送达而放弃的通知"}},
      {"pending", {"Pending", "待推送"}},
      {"failing", {"Failing", "推送失败"}},
      {"delivered", {"Delivered", "已推送"}},
      {"waived", {"Waived", "已豁免"}},
      {"confirmed", {"Confirmed", "已确认"}},
      {"closure", {"Closure", "发布关闭"}},
      {"not_closed", {"Not closed yet.", "尚未关闭。"}},
      // Test report.
      {"tests", {"Test reports", "测试报告"}},
      {"author", {"Tester", "测试人员"}},
      {"round", {"Review round", "评审轮次"}},
      {"test_deployment", {"Test deployment", "测试部署"}},
      {"acceptance", {"Acceptance", "测试验收"}},
      {"accepted_by", {"Accepted by", "验收人"}},
      {"waive_reason", {"Test waived (emergency)", "紧急发布免测试"}},
      {"comment", {"Comment", "意见"}},
      // The release plan (发布方案, procedure §6.2.1).
      {"created", {"Created", "创建时间"}},
      {"content_digest", {"Approved content digest (SHA-256)", "已批准内容摘要（SHA-256）"}},
      {"not_approved", {"(not approved)", "（未批准）"}},
      {"test_waived_flag", {"EMERGENCY RELEASE: TESTING WAIVED", "紧急发布：已免除测试"}},
      {"change_requests", {"Change requests", "变更请求"}},
      {"change_ref", {"Change ref", "变更单号"}},
      {"packages", {"Packages", "软件包"}},
      {"name", {"Name", "名称"}},
      {"size", {"Size (bytes)", "大小（字节）"}},
      {"targets", {"Targets", "目标主机"}},
      {"selector", {"selector", "主机标签"}},
      {"not_chosen", {"(not chosen)", "（未选定）"}},
      {"golive", {"Go-live plan", "上线方案"}},
      {"not_set", {"(not set)", "（未设定）"}},
      {"max_failures", {"Max failures per wave", "每批允许失败数"}},
      {"between_waves", {"Between waves", "批次间隔"}},
      {"gate", {"gate (manual confirmation)", "控制点（人工确认）"}},
      {"host_timeout", {"Host timeout", "单台主机超时"}},
      {"auto_rollback", {"Auto rollback", "自动回退"}},
      {"observe", {"Observe", "观察期"}},
      {"every", {"every", "间隔"}},
      {"golive_approval", {"Go-live approval", "上线方案评审"}},
      {"golive_not_approved", {"not approved", "未批准"}},
      {"golive_approved_by", {"approved by", "批准人"}},
      {"golive_with_plan", {"approved with the release plan", "随发布方案一并批准"}},
      {"review", {"Review", "评审"}},
      {"reviewer", {"Reviewer", "评审人"}},
      {"decision", {"Decision", "评审结论"}},
      {"empty", {"(empty)", "（空）"}},
      // The upgrade record table (升级记录表, procedure §6.2.8).
      {"package", {"Package", "软件包"}},
      {"from_version", {"From version", "原版本"}},
      {"to_version", {"To version", "新版本"}},
      {"started", {"Started", "开始时间"}},
      {"finished", {"Finished", "结束时间"}},
      {"operator", {"Operator", "操作人"}},
      {"kind", {"Kind", "类型"}},
      {"deployment", {"Deployment", "部署编号"}},
      {"cmdb_summary",
       {"{} record(s); outward deliveries: {} delivered, {} waived, {} pending, {} failing; CMDB "
        "update {}",
        "共 {} 条记录；外部推送：已推送 {}，已豁免 {}，待推送 {}，推送失败 {}；CMDB更新{}"}},
      {"cmdb_confirmed", {"confirmed", "已确认"}},
      {"cmdb_not_confirmed", {"not confirmed yet", "尚未确认"}},

      // Terms (Term()): what a value means, key "<kind>.<value>".
      // Release states.
      {"state.draft", {"Draft", "草稿"}},
      {"state.in_review", {"In review", "评审中"}},
      {"state.approved", {"Approved", "已批准"}},
      {"state.testing", {"Testing", "测试中"}},
      {"state.accepted", {"Accepted", "已验收"}},
      {"state.scheduled", {"Scheduled", "已排期"}},
      {"state.deploying", {"Deploying", "部署中"}},
      {"state.paused", {"Paused", "已暂停"}},
      {"state.deployed", {"Deployed", "已部署"}},
      {"state.failed", {"Failed", "发布失败"}},
      {"state.rolling_back", {"Rolling back", "回退中"}},
      {"state.rolled_back", {"Rolled back", "已回退"}},
      {"state.closed", {"Closed", "已关闭"}},
      {"state.cancelled", {"Cancelled", "已取消"}},
      // Release categories (procedure §6.1.1(8)); a category of the
      // coordinator's config.json not listed here is shown as written.
      {"category.major", {"Major", "重大发布"}},
      {"category.minor", {"Minor", "一般发布"}},
      {"category.patch", {"Patch", "补丁发布"}},
      {"category.emergency", {"Emergency", "紧急发布"}},
      // Close codes (procedure §6.2.9).
      {"close_code.success", {"Success", "成功"}},
      {"close_code.partial", {"Partial", "部分成功"}},
      {"close_code.failed", {"Failed", "失败"}},
      {"close_code.rolled_back", {"Rolled back", "已回退"}},
      {"close_code.cancelled", {"Cancelled", "已取消"}},
      // Results of a deployment on a host (and of its rollback).
      {"result.succeeded", {"Succeeded", "成功"}},
      {"result.failed", {"Failed", "失败"}},
      {"result.rolled_back", {"Rolled back", "已回退"}},
      {"result.rollback_failed", {"Rollback failed", "回退失败"}},
      {"result.timeout", {"Timed out", "超时"}},
      {"result.host_removed", {"Host removed", "主机已移除"}},
      // Test results and review decisions.
      {"test_result.passed", {"Passed", "通过"}},
      {"test_result.failed", {"Failed", "未通过"}},
      {"decision.approved", {"Approved", "批准"}},
      {"decision.rejected", {"Rejected", "驳回"}},
      {"decision.pending", {"Pending", "待评审"}},
      // A wave's state.
      {"wave_state.pending", {"Pending", "未开始"}},
      {"wave_state.running", {"Running", "进行中"}},
      {"wave_state.succeeded", {"Succeeded", "成功"}},
      {"wave_state.failed", {"Failed", "失败"}},
      {"wave_state.accepted", {"Failures accepted", "已接受失败"}},
      // The kind of an upgrade record.
      {"record_kind.install", {"Install", "升级"}},
      {"record_kind.rollback", {"Rollback", "回退"}},
      // A message of the outbox (a CMDB delivery or a notice).
      {"delivery.pending", {"Pending", "待推送"}},
      {"delivery.failing", {"Failing", "推送失败"}},
      {"delivery.delivered", {"Delivered", "已推送"}},
      {"delivery.waived", {"Waived", "已豁免"}},
      {"delivery.given_up", {"Given up", "已放弃"}},
      // Notice events (coordinator/notify/notices.hpp).
      {"event.scheduled", {"Scheduled", "已排期"}},
      {"event.started", {"Rollout started", "开始上线"}},
      {"event.paused", {"Paused", "已暂停"}},
      {"event.rolled_back", {"Rolled back", "已回退"}},
      {"event.completed", {"Rollout completed", "上线结束"}},
      {"event.closed", {"Closed", "已关闭"}},
      // Incidents.
      {"incident_state.open", {"Open", "未关闭"}},
      {"incident_state.closed", {"Closed", "已关闭"}},
      {"incident_source.observation", {"Observation", "观察期检测"}},
      {"incident_source.manual", {"Manual", "人工登记"}},
      // Actions and roles: in English the CLI's verb and the role's name.
      {"action.create", {"create", "创建"}},
      {"action.update", {"update", "修改"}},
      {"action.submit", {"submit", "提交评审"}},
      {"action.approve", {"approve", "批准"}},
      {"action.reject", {"reject", "驳回"}},
      {"action.set-golive", {"set-golive", "设定上线方案"}},
      {"action.approve-golive", {"approve-golive", "批准上线方案"}},
      {"action.test-report", {"test-report", "提交测试报告"}},
      {"action.accept", {"accept", "验收"}},
      {"action.schedule", {"schedule", "排期"}},
      {"action.cancel", {"cancel", "取消"}},
      {"action.test-deploy", {"test-deploy", "测试部署"}},
      {"action.start-rollout", {"start-rollout", "开始上线"}},
      {"action.pause", {"pause", "暂停"}},
      {"action.resume", {"resume", "继续"}},
      {"action.finish-rollout", {"finish-rollout", "上线完成"}},
      {"action.fail-rollout", {"fail-rollout", "上线失败"}},
      {"action.rollback", {"rollback", "回退"}},
      {"action.finish-rollback", {"finish-rollback", "回退完成"}},
      {"action.close", {"close", "关闭"}},
      {"action.gate", {"gate", "控制点确认"}},
      {"action.abort", {"abort", "中止"}},
      {"action.reschedule", {"reschedule", "重新排期"}},
      {"action.override-freeze", {"override-freeze", "越过冻结期"}},
      {"action.retry", {"retry", "重试失败主机"}},
      {"role.admin", {"admin", "管理员"}},
      {"role.approver", {"approver", "发布管理负责人"}},
      {"role.release_manager", {"release_manager", "发布负责人"}},
      {"role.tester", {"tester", "发布测试人员"}},
      {"role.viewer", {"viewer", "查看者"}},
      {"role.system", {"system", "系统"}},
  };
  return kTable;
}

constexpr int kChartWidth = 560;
constexpr int kChartHeight = 240;
constexpr int kLeft = 48, kRight = 16, kTop = 32, kBottom = 48;

std::string SvgText(std::string_view text) { return EscapeHtml(text); }

}  // namespace

Result<Lang> ParseLang(std::string_view text) {
  if (text == "en") return Lang::kEn;
  if (text == "zh-CN" || text == "zh") return Lang::kZhCn;
  return Fail(ErrorCode::kInvalidArgument,
              fmt::format("lang: \"{}\" is not a language of the records (en or zh-CN)", text));
}

std::string_view LangTag(Lang lang) { return lang == Lang::kEn ? "en" : "zh-CN"; }

std::string_view Label(Lang lang, std::string_view key) {
  const auto& table = LabelTable();
  auto it = table.find(key);
  if (it == table.end()) return key;
  return lang == Lang::kEn ? it->second.en : it->second.zh;
}

std::string_view TermKindName(TermKind kind) {
  switch (kind) {
    case TermKind::kState:
      return "state";
    case TermKind::kCategory:
      return "category";
    case TermKind::kCloseCode:
      return "close_code";
    case TermKind::kResult:
      return "result";
    case TermKind::kTestResult:
      return "test_result";
    case TermKind::kDecision:
      return "decision";
    case TermKind::kWaveState:
      return "wave_state";
    case TermKind::kRecordKind:
      return "record_kind";
    case TermKind::kDelivery:
      return "delivery";
    case TermKind::kEvent:
      return "event";
    case TermKind::kIncidentState:
      return "incident_state";
    case TermKind::kIncidentSource:
      return "incident_source";
    case TermKind::kAction:
      return "action";
    case TermKind::kRole:
      return "role";
  }
  return "";
}

std::string Term(Lang lang, TermKind kind, std::string_view value) {
  if (value.empty()) return {};
  const auto& table = LabelTable();
  auto it = table.find(fmt::format("{}.{}", TermKindName(kind), value));
  if (it == table.end()) return std::string(value);
  return std::string(lang == Lang::kEn ? it->second.en : it->second.zh);
}

std::string CsvField(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '"') out += '"';
    out += ch;
  }
  out += '"';
  return out;
}

std::string CsvRow(const std::vector<std::string>& fields) {
  std::string out;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ',';
    out += CsvField(fields[i]);
  }
  return out + "\r\n";
}

std::string MdCell(std::string_view text) {
  std::string out;
  for (char ch : text) {
    if (ch == '|') {
      out += "\\|";
    } else if (ch == '\n') {
      out += "<br>";
    } else if (ch != '\r') {
      out += ch;
    }
  }
  return out.empty() ? std::string("—") : out;
}

std::string MdTable(const std::vector<std::string>& header,
                    const std::vector<std::vector<std::string>>& rows) {
  std::string out = "|";
  for (const auto& h : header) out += " " + MdCell(h) + " |";
  out += "\n|";
  for (std::size_t i = 0; i < header.size(); ++i) out += " --- |";
  out += "\n";
  for (const auto& row : rows) {
    out += "|";
    for (const auto& cell : row) out += " " + MdCell(cell) + " |";
    out += "\n";
  }
  return out + "\n";
}

std::string HtmlTable(const std::vector<std::string>& header,
                      const std::vector<std::vector<std::string>>& rows) {
  std::string out = "<table>\n<thead><tr>";
  for (const auto& h : header) out += "<th>" + EscapeHtml(h) + "</th>";
  out += "</tr></thead>\n<tbody>\n";
  for (const auto& row : rows) {
    out += "<tr>";
    for (const auto& cell : row) out += "<td>" + EscapeHtml(cell) + "</td>";
    out += "</tr>\n";
  }
  return out + "</tbody>\n</table>\n";
}

std::string HtmlBegin(Lang lang, std::string_view title) {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<title>{}</title>\n<style>\n"
      "body{{font-family:sans-serif;margin:2em;max-width:60em;color:#222}}\n"
      "table{{border-collapse:collapse;margin:0.5em 0 1.5em}}\n"
      "th,td{{border:1px solid #bbb;padding:0.25em 0.6em;text-align:left;vertical-align:top}}\n"
      "th{{background:#eee}}\nsvg{{display:block;margin:0.5em 0 1.5em}}\n"
      "pre{{background:#f6f6f6;padding:0.5em;white-space:pre-wrap}}\n"
      ".flag{{color:#a00;font-weight:bold}}\n"
      "</style>\n</head>\n<body>\n<h1>{}</h1>\n",
      LangTag(lang), EscapeHtml(title), EscapeHtml(title));
}

std::string HtmlEnd() { return "</body>\n</html>\n"; }

std::string SvgBarChart(std::string_view id, std::string_view title, const std::vector<Bar>& bars) {
  double max = 0;
  for (const Bar& b : bars) max = std::max(max, b.value);
  if (max <= 0) max = 1;
  const int plot_w = kChartWidth - kLeft - kRight;
  const int plot_h = kChartHeight - kTop - kBottom;
  std::string out = fmt::format(
      "<svg id=\"{}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" "
      "height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" data-bars=\"{}\">\n"
      "<title>{}</title>\n<text x=\"{}\" y=\"18\" font-size=\"14\">{}</text>\n"
      "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#444\"/>\n",
      SvgText(id), kChartWidth, kChartHeight, kChartWidth, kChartHeight, bars.size(),
      SvgText(title), kLeft, SvgText(title), kLeft, kTop + plot_h, kLeft + plot_w, kTop + plot_h);
  if (bars.empty()) {
    out += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"12\">—</text>\n", kLeft + 8,
                       kTop + plot_h / 2);
  }
  const double slot = bars.empty() ? 0 : static_cast<double>(plot_w) / bars.size();
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const double h = bars[i].value / max * plot_h;
    const double x = kLeft + slot * i + slot * 0.15;
    const double y = kTop + plot_h - h;
    out += fmt::format(
        "<rect class=\"bar\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
        "fill=\"#4a7ab5\" data-label=\"{}\" data-value=\"{}\"><title>{}: {}</title></rect>\n"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"12\" text-anchor=\"middle\">{}</text>\n"
        "<text x=\"{:.1f}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{}</text>\n",
        x, y, slot * 0.7, h, SvgText(bars[i].label), bars[i].value, SvgText(bars[i].label),
        SvgText(bars[i].text), x + slot * 0.35, y - 4, SvgText(bars[i].text), x + slot * 0.35,
        kTop + plot_h + 16, SvgText(bars[i].label));
  }
  return out + "</svg>\n";
}

std::string SvgCheckChart(std::string_view id, std::string_view title,
                          const std::vector<CheckPoint>& points, double bound) {
  double low = std::min(0.0, bound), high = bound;
  for (const CheckPoint& p : points) {
    if (!p.value || !std::isfinite(*p.value)) continue;
    low = std::min(low, *p.value);
    high = std::max(high, *p.value);
  }
  if (high <= low) high = low + 1;
  high += (high - low) * 0.1;
  const int plot_w = kChartWidth - kLeft - kRight;
  const int plot_h = kChartHeight - kTop - kBottom;
  auto y_of = [&](double v) { return kTop + plot_h - (v - low) / (high - low) * plot_h; };
  const double slot = points.empty() ? 0 : static_cast<double>(plot_w) / points.size();
  std::string out = fmt::format(
      "<svg id=\"{}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" "
      "height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" data-points=\"{}\">\n"
      "<title>{}</title>\n<text x=\"{}\" y=\"18\" font-size=\"14\">{}</text>\n"
      "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#444\"/>\n"
      "<line class=\"bound\" x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#b22222\" "
      "stroke-dasharray=\"4 3\"/><text x=\"{}\" y=\"{:.1f}\" font-size=\"11\" "
      "text-anchor=\"end\">{}</text>\n",
      SvgText(id), kChartWidth, kChartHeight, kChartWidth, kChartHeight, points.size(),
      SvgText(title), kLeft, SvgText(title), kLeft, kTop + plot_h, kLeft + plot_w, kTop + plot_h,
      kLeft, y_of(bound), kLeft + plot_w, y_of(bound), kLeft - 4, y_of(bound) + 4,
      fmt::format("{:.4g}", bound));
  for (std::size_t i = 0; i < points.size(); ++i) {
    const CheckPoint& p = points[i];
    const double x = kLeft + slot * (static_cast<double>(i) + 0.5);
    const bool finite = p.value && std::isfinite(*p.value);
    const double y = finite ? y_of(*p.value) : kTop + plot_h;
    const std::string_view colour = !finite ? "#999" : p.passed ? "#2e8b57" : "#b22222";
    out += fmt::format(
        "<circle class=\"point\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4\" fill=\"{}\" "
        "data-label=\"{}\" data-value=\"{}\"><title>{}: {}</title></circle>\n",
        x, y, colour, SvgText(p.label), finite ? fmt::format("{}", *p.value) : std::string(),
        SvgText(p.label), finite ? fmt::format("{:.6g}", *p.value) : std::string("—"));
  }
  return out + "</svg>\n";
}

std::string SvgRatioChart(std::string_view id, std::string_view title,
                          const std::vector<std::string>& x_labels,
                          const std::vector<Series>& series) {
  static constexpr std::string_view kColours[] = {"#2e8b57", "#d2691e", "#4a7ab5", "#8b008b"};
  const int plot_w = kChartWidth - kLeft - kRight;
  const int plot_h = kChartHeight - kTop - kBottom;
  const double step =
      x_labels.size() > 1 ? static_cast<double>(plot_w) / (x_labels.size() - 1) : 0.0;
  auto x_of = [&](std::size_t i) { return kLeft + step * static_cast<double>(i); };
  auto y_of = [&](double v) { return kTop + plot_h - v * plot_h; };
  std::string out = fmt::format(
      "<svg id=\"{}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" "
      "height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" data-months=\"{}\">\n"
      "<title>{}</title>\n<text x=\"{}\" y=\"18\" font-size=\"14\">{}</text>\n",
      SvgText(id), kChartWidth, kChartHeight, kChartWidth, kChartHeight, x_labels.size(),
      SvgText(title), kLeft, SvgText(title));
  for (int pct : {0, 50, 100}) {
    out += fmt::format(
        "<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#ddd\"/>"
        "<text x=\"{}\" y=\"{:.1f}\" font-size=\"11\" text-anchor=\"end\">{}%</text>\n",
        kLeft, y_of(pct / 100.0), kLeft + plot_w, y_of(pct / 100.0), kLeft - 4,
        y_of(pct / 100.0) + 4, pct);
  }
  for (std::size_t i = 0; i < x_labels.size(); ++i) {
    out += fmt::format(
        "<text x=\"{:.1f}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{}</text>\n", x_of(i),
        kTop + plot_h + 16 + (i % 2) * 12, SvgText(x_labels[i]));
  }
  for (std::size_t s = 0; s < series.size(); ++s) {
    const std::string_view colour = kColours[s % std::size(kColours)];
    // One polyline per run of months that have a value.
    std::string points;
    auto flush = [&] {
      if (!points.empty()) {
        out += fmt::format(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n", colour,
            points);
      }
      points.clear();
    };
    for (std::size_t i = 0; i < series[s].values.size() && i < x_labels.size(); ++i) {
      const auto& v = series[s].values[i];
      if (!v) {
        flush();
        continue;
      }
      points += fmt::format("{}{:.1f},{:.1f}", points.empty() ? "" : " ", x_of(i), y_of(*v));
      out += fmt::format(
          "<circle class=\"point\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\" "
          "data-series=\"{}\" data-month=\"{}\" data-value=\"{:.4f}\"><title>{} {}: "
          "{:.1f}%</title></circle>\n",
          x_of(i), y_of(*v), colour, SvgText(series[s].name), SvgText(x_labels[i]), *v,
          SvgText(series[s].name), SvgText(x_labels[i]), *v * 100.0);
    }
    flush();
    out += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/>"
        "<text x=\"{}\" y=\"{}\" font-size=\"12\">{}</text>\n",
        kLeft + 200 + static_cast<int>(s) * 150, 8, colour, kLeft + 214 + static_cast<int>(s) * 150,
        17, SvgText(series[s].name));
  }
  return out + "</svg>\n";
}

std::string DurationText(std::optional<std::int64_t> milliseconds) {
  if (!milliseconds) return "n/a";
  if (*milliseconds < 10'000)
    return fmt::format("{:.1f}s", static_cast<double>(*milliseconds) / 1000);
  const std::int64_t s = *milliseconds / 1000;
  if (s >= 86400) return fmt::format("{}d {}h {}m", s / 86400, s % 86400 / 3600, s % 3600 / 60);
  if (s >= 3600) return fmt::format("{}h {}m", s / 3600, s % 3600 / 60);
  if (s >= 60) return fmt::format("{}m {}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

std::string OutputExcerpt(std::string_view output, std::size_t max_lines) {
  std::vector<std::string_view> lines;
  while (!output.empty()) {
    const std::size_t nl = output.find('\n');
    std::string_view line = output.substr(0, nl);
    output = nl == std::string_view::npos ? std::string_view() : output.substr(nl + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    if (!line.empty()) lines.push_back(line);
  }
  std::string out;
  const std::size_t first = lines.size() > max_lines ? lines.size() - max_lines : 0;
  for (std::size_t i = first; i < lines.size(); ++i) {
    if (!out.empty()) out += " | ";
    out += lines[i];
  }
  return out;
}

}  // namespace fabu::coordinator::release
