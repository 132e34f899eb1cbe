// Checks on metrics (coordinator/release/metric_check.hpp) and what the
// rollout's decision does with them (rollout_decision.hpp): the plan's
// `golive.checks` read strictly, conditions, the expansion of $WAVE_HOSTS,
// Prometheus's and a JSON endpoint's answers judged, a check's verdict from
// its measurements, and a wave held, rolled back, paused or let go by its
// checks. The real Prometheus and a real receiver are in
// tests/e2e/metric_checks_e2e_test.cpp.
#include "coordinator/release/metric_check.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "coordinator/release/golive_plan.hpp"
#include "coordinator/release/rollout_decision.hpp"

namespace fabu::coordinator::release {
namespace {

using json = nlohmann::json;
using Kind = RolloutDecision::Kind;

json ACheck() {
  return {{"name", "error-ratio"},
          {"type", "prometheus"},
          {"query", "sum(rate(errors_total{host=~\"$WAVE_HOSTS\"}[1m]))"},
          {"condition", "< 0.01"},
          {"interval", "30s"},
          {"count", 3}};
}

std::string ErrorOf(const json& checks) {
  auto parsed = MetricChecksFromJson(checks, "golive.checks");
  return parsed ? std::string("(accepted)") : parsed.error().message();
}

TEST(MetricCheckTest, APlansChecksAreReadWithTheirDefaults) {
  json http = {{"name", "p99"},
               {"type", "http"},
               {"url", "http://mon/stats?r=$RELEASE"},
               {"select", "$.sites[0].p99"},
               {"condition", "<= 250"},
               {"interval", "1m"},
               {"dry_run", true}};
  auto checks = MetricChecksFromJson(json::array({ACheck(), http}), "golive.checks");
  ASSERT_TRUE(checks) << checks.error().message();
  ASSERT_EQ(checks->size(), 2u);
  const MetricCheck& p = (*checks)[0];
  EXPECT_EQ(p.kind, MetricCheck::Kind::kPrometheus);
  EXPECT_EQ(p.interval_seconds, 30);
  EXPECT_EQ(p.count, 3u);
  EXPECT_EQ(p.failure_limit, 0u);
  EXPECT_EQ(p.inconclusive_limit, 0u);
  EXPECT_EQ(p.consecutive_error_limit, 4u);
  EXPECT_FALSE(p.dry_run);
  EXPECT_EQ(p.condition.ToString(), "< 0.01");
  const MetricCheck& h = (*checks)[1];
  EXPECT_EQ(h.kind, MetricCheck::Kind::kHttp);
  EXPECT_EQ(h.selector, "$.sites[0].p99");
  EXPECT_TRUE(h.dry_run);
  // Written back and read again, the same checks.
  json written = json::array();
  for (const MetricCheck& c : *checks) written.push_back(MetricCheckToJson(c));
  auto again = MetricChecksFromJson(written, "golive.checks");
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(*again, *checks);
}

TEST(MetricCheckTest, EveryWrongFieldIsRefusedNamingIt) {
  json c = ACheck();
  c["condition"] = "below 0.01";
  EXPECT_NE(ErrorOf(json::array({c})).find("golive.checks[0].condition"), std::string::npos)
      << ErrorOf(json::array({c}));
  c = ACheck();
  c["condition"] = "< 1e400";
  EXPECT_NE(ErrorOf(json::array({c})).find("finite"), std::string::npos)
      << ErrorOf(json::array({c}));
  c = ACheck();
  c.erase("query");
  EXPECT_NE(ErrorOf(json::array({c})).find("golive.checks[0].query: is required"),
            std::string::npos);
  c = ACheck();
  c["type"] = "graphite";
  EXPECT_NE(ErrorOf(json::array({c})).find("golive.checks[0].type"), std::string::npos);
  c = ACheck();
  c["name"] = "Error Ratio";
  EXPECT_NE(ErrorOf(json::array({c})).find("golive.checks[0].name"), std::string::npos);
  c = ACheck();
  c["interval"] = "0s";
  EXPECT_NE(ErrorOf(json::array({c})).find("golive.checks[0].interval"), std::string::npos);
  c = ACheck();
  c["failure_limit"] = 3;  // count is 3: it could never fail
  EXPECT_NE(ErrorOf(json::array({c})).find("golive.checks[0].failure_limit"), std::string::npos);
  c = ACheck();
  c["count"] = -1;
  EXPECT_NE(ErrorOf(json::array({c})).find("golive.checks[0].count"), std::string::npos);
  c = ACheck();
  c["url"] = "http://x/";
  EXPECT_NE(ErrorOf(json::array({c})).find("golive.checks[0].url"), std::string::npos);
  c = ACheck();
  c["extra"] = 1;
  EXPECT_NE(ErrorOf(json::array({c})).find("unknown field"), std::string::npos);
  EXPECT_NE(ErrorOf(json::array({ACheck(), ACheck()}))
                .find("golive.checks[1].name: \"error-ratio\" is used twice"),
            std::string::npos);
  json h = {{"name", "h"},
            {"type", "http"},
            {"url", "ftp://x/"},
            {"condition", "< 1"},
            {"interval", "1m"}};
  EXPECT_NE(ErrorOf(json::array({h})).find("golive.checks[0].url"), std::string::npos);
  h["url"] = "http://x/";
  h["select"] = "errors.ratio";
  EXPECT_NE(ErrorOf(json::array({h})).find("golive.checks[0].select"), std::string::npos);
  EXPECT_NE(ErrorOf(json::object()).find("must be a list"), std::string::npos);
}

TEST(MetricCheckTest, AGoLivePlanWithoutChecksKeepsItsDigest) {
  json golive = {{"window", {{"start", "2027-01-15T08:00:00Z"}, {"end", "2027-01-15T09:00:00Z"}}},
                 {"waves", {"1", "100%"}},
                 {"max_failures", "0"},
                 {"between_waves", "1m"},
                 {"host_timeout", "10m"},
                 {"auto_rollback", true}};
  auto plain = GoLivePlanFromJson(golive);
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_FALSE(GoLivePlanToJson(*plain).contains("checks"));
  golive["checks"] = {ACheck()};
  auto checked = GoLivePlanFromJson(golive);
  ASSERT_TRUE(checked) << checked.error().message();
  ASSERT_EQ(checked->checks.size(), 1u);
  // The checks are part of what a go-live approval freezes.
  EXPECT_NE(*GoLiveDigest(*plain), *GoLiveDigest(*checked));
  golive["checks"] = {{{"name", "x"}}};
  auto bad = GoLivePlanFromJson(golive);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("golive.checks[0].type"), std::string::npos);
}

TEST(MetricCheckTest, ConditionsHoldAsWritten) {
  EXPECT_TRUE(ParseCheckCondition("< 0.01")->Holds(0.005));
  EXPECT_FALSE(ParseCheckCondition("< 0.01")->Holds(0.01));
  EXPECT_TRUE(ParseCheckCondition("<= 0.01")->Holds(0.01));
  EXPECT_TRUE(ParseCheckCondition(">0.99")->Holds(1));
  EXPECT_TRUE(ParseCheckCondition(">= -5")->Holds(-5));
  EXPECT_TRUE(ParseCheckCondition("== 0")->Holds(0));
  EXPECT_TRUE(ParseCheckCondition("!= 0")->Holds(2));
  EXPECT_FALSE(ParseCheckCondition("< 1")->Holds(std::nan("")));
  EXPECT_FALSE(ParseCheckCondition("= 1"));
  EXPECT_FALSE(ParseCheckCondition("< NaN"));
  EXPECT_FALSE(ParseCheckCondition("<"));
}

TEST(MetricCheckTest, TheQueryNamesTheWavesHostsTheReleaseAndItsVersion) {
  MetricCheck check = *MetricChecksFromJson(json::array({ACheck()}), "c")->begin();
  check.query = "x{host=~\"$WAVE_HOSTS\",release=\"$RELEASE\",version=\"$VERSION\"}";
  const CheckSubject subject{{"web-1", "db.site-2"}, "R-7", "V1.2.0.3"};
  const auto escape = [](std::string_view text) { return "<" + std::string(text) + ">"; };
  EXPECT_EQ(ExpandCheckQuery(check, subject, escape),
            "x{host=~\"web-1|db\\\\.site-2\",release=\"R-7\",version=\"V1.2.0.3\"}");
  check.kind = MetricCheck::Kind::kHttp;
  check.url = "http://mon/q?hosts=$WAVE_HOSTS&v=$VERSION";
  EXPECT_EQ(ExpandCheckQuery(check, subject, escape),
            "http://mon/q?hosts=<web-1|db.site-2>&v=<V1.2.0.3>");
}

MetricCheck Prometheus(std::string condition) {
  MetricCheck c;
  c.name = "c";
  c.condition = *ParseCheckCondition(condition);
  c.interval_seconds = 10;
  c.count = 3;
  return c;
}

std::string Vector(const std::vector<std::pair<std::string, std::string>>& samples) {
  json result = json::array();
  for (const auto& [host, value] : samples) {
    result.push_back({{"metric", {{"host", host}}}, {"value", {1700000000.5, value}}});
  }
  return json{{"status", "success"}, {"data", {{"resultType", "vector"}, {"result", result}}}}
      .dump();
}

TEST(MetricCheckTest, PrometheusAnswersAreJudgedSeriesBySeries) {
  const MetricCheck c = Prometheus("< 0.05");
  Measurement m = JudgePrometheusAnswer(c, Vector({{"web-1", "0.01"}, {"web-2", "0.02"}}));
  EXPECT_EQ(m.outcome, MeasureOutcome::kPass) << m.detail;
  EXPECT_DOUBLE_EQ(*m.value, 0.02);  // the nearest to failing
  m = JudgePrometheusAnswer(c, Vector({{"web-1", "0.01"}, {"web-2", "0.3"}}));
  EXPECT_EQ(m.outcome, MeasureOutcome::kFail);
  EXPECT_DOUBLE_EQ(*m.value, 0.3);
  EXPECT_NE(m.detail.find("host=\"web-2\""), std::string::npos) << m.detail;
  EXPECT_EQ(JudgePrometheusAnswer(c, Vector({})).outcome, MeasureOutcome::kInconclusive);
  EXPECT_EQ(JudgePrometheusAnswer(c, Vector({{"web-1", "NaN"}})).outcome,
            MeasureOutcome::kInconclusive);
  EXPECT_EQ(JudgePrometheusAnswer(c, Vector({{"web-1", "+Inf"}})).outcome, MeasureOutcome::kFail);
  m = JudgePrometheusAnswer(
      c, R"({"status":"error","errorType":"bad_data","error":"parse error at char 3"})");
  EXPECT_EQ(m.outcome, MeasureOutcome::kError);
  EXPECT_NE(m.detail.find("parse error at char 3"), std::string::npos) << m.detail;
  EXPECT_EQ(JudgePrometheusAnswer(c, "<html>").outcome, MeasureOutcome::kError);
  EXPECT_EQ(JudgePrometheusAnswer(
                c, R"({"status":"success","data":{"resultType":"scalar","result":[1,"0.5"]}})")
                .outcome,
            MeasureOutcome::kFail);
  EXPECT_EQ(JudgePrometheusAnswer(c, R"({"status":"success","data":{"resultType":"matrix",)"
                                     R"("result":[]}})")
                .outcome,
            MeasureOutcome::kError);
}

// Members of another type than Prometheus documents (a fuzzer's find: an
// array as resultType threw) are a measurement error, never an exception.
TEST(MetricCheckTest, APrometheusAnswerWithMembersOfTheWrongTypeIsAnError) {
  const MetricCheck c = Prometheus("< 0.05");
  for (const char* answer :
       {R"({"status":"success","data":{"resultType":[{"metric":{}}],"result":[]}})",
        R"({"status":["success"],"data":{"resultType":"vector","result":[]}})",
        R"({"status":"error","error":{"text":"bad"}})",
        R"({"status":"success","data":{"resultType":"vector","result":[{"metric":[1],)"
        R"("value":[1,"0.01"]}]}})"}) {
    Measurement m;
    ASSERT_NO_THROW(m = JudgePrometheusAnswer(c, answer)) << answer;
    EXPECT_NE(m.outcome, MeasureOutcome::kFail) << answer;
  }
  EXPECT_EQ(JudgePrometheusAnswer(
                c, R"({"status":"success","data":{"resultType":[{"metric":{}}],"result":[]}})")
                .outcome,
            MeasureOutcome::kError);
}

TEST(MetricCheckTest, AJsonEndpointIsJudgedAtItsSelector) {
  MetricCheck c = Prometheus("< 250");
  c.kind = MetricCheck::Kind::kHttp;
  c.selector = "$.sites[1].p99";
  const std::string body = R"({"sites":[{"p99":100},{"p99":300}],"name":"x"})";
  Measurement m = JudgeHttpAnswer(c, body);
  EXPECT_EQ(m.outcome, MeasureOutcome::kFail);
  EXPECT_DOUBLE_EQ(*m.value, 300);
  c.selector = "$.sites[0].p99";
  EXPECT_EQ(JudgeHttpAnswer(c, body).outcome, MeasureOutcome::kPass);
  c.selector = "$.sites[5].p99";
  EXPECT_EQ(JudgeHttpAnswer(c, body).outcome, MeasureOutcome::kInconclusive);
  c.selector = "$.name";
  m = JudgeHttpAnswer(c, body);
  EXPECT_EQ(m.outcome, MeasureOutcome::kInconclusive);
  EXPECT_NE(m.detail.find("not a number"), std::string::npos) << m.detail;
  EXPECT_EQ(JudgeHttpAnswer(c, "not json").outcome, MeasureOutcome::kError);
}

Measurement M(MeasureOutcome outcome, std::int64_t at = 0) {
  Measurement m;
  m.outcome = outcome;
  m.at = at;
  m.detail = std::string(MeasureOutcomeName(outcome));
  return m;
}

TEST(MetricCheckTest, AVerdictFollowsTheLimits) {
  MetricCheck c = Prometheus("< 1");
  using S = CheckVerdict::State;
  const auto pass = M(MeasureOutcome::kPass), fail = M(MeasureOutcome::kFail),
             none = M(MeasureOutcome::kInconclusive), error = M(MeasureOutcome::kError);
  EXPECT_EQ(JudgeCheck(c, {}).state, S::kMeasuring);
  EXPECT_EQ(JudgeCheck(c, {pass, pass}).state, S::kMeasuring);
  EXPECT_EQ(JudgeCheck(c, {pass, pass, pass}).state, S::kPassed);
  // A failure over the limit fails at once, without waiting for the count.
  EXPECT_EQ(JudgeCheck(c, {fail}).state, S::kFailed);
  c.failure_limit = 1;
  EXPECT_EQ(JudgeCheck(c, {fail, pass}).state, S::kMeasuring);
  EXPECT_EQ(JudgeCheck(c, {fail, pass, pass}).state, S::kPassed);
  EXPECT_EQ(JudgeCheck(c, {fail, fail}).state, S::kFailed);
  EXPECT_EQ(JudgeCheck(c, {none}).state, S::kInconclusive);
  // Errors do not count toward `count`; too many in a row are inconclusive.
  EXPECT_EQ(JudgeCheck(c, {error, error, error, error, pass, pass, pass}).state, S::kPassed);
  const CheckVerdict v = JudgeCheck(c, {pass, error, error, error, error, error});
  EXPECT_EQ(v.state, S::kInconclusive);
  EXPECT_NE(v.summary.find("5 error(s) in a row"), std::string::npos) << v.summary;
  // The next measurement: an interval after the last, or after the wave's end.
  EXPECT_EQ(NextMeasurementAt(c, {}, 1000), 1010);
  EXPECT_EQ(NextMeasurementAt(c, {M(MeasureOutcome::kPass, 1012)}, 1000), 1022);
}

// A rollout of 10 hosts in waves 2, 100% with one check, its first wave
// final with no failure.
RolloutSnapshot Checked(bool auto_rollback = true, bool dry_run = false) {
  RolloutSnapshot s;
  s.release_id = "R-7";
  s.state = ReleaseState::kDeploying;
  s.golive.waves = {{HostAmount::Kind::kCount, 2}, {HostAmount::Kind::kPercent, 100}};
  s.golive.auto_rollback = auto_rollback;
  MetricCheck c = Prometheus("< 0.05");
  c.name = "error-ratio";
  c.dry_run = dry_run;
  s.golive.checks = {c};
  s.waves = *RolloutWaves(s.golive.waves, 10, s.golive.max_failures);
  s.targets = 10;
  s.now = 1'800'000'000;
  s.current_wave = 0;
  s.wave = {2, 2, 2, 2, 0};
  s.outcome.hosts = 2;
  s.outcome.succeeded = 2;
  return s;
}

void Measured(RolloutSnapshot& s, std::vector<Measurement> taken) {
  s.wave_done_at = s.now - 100;
  s.checks = {WaveCheck{s.golive.checks[0], JudgeCheck(s.golive.checks[0], taken),
                        NextMeasurementAt(s.golive.checks[0], taken, s.wave_done_at)}};
}

TEST(MetricCheckTest, TheNextWaveWaitsForTheChecksOfTheLast) {
  RolloutSnapshot s = Checked();
  RolloutDecision d = DecideRollout(s);  // the wave just ended: nothing measured yet
  EXPECT_TRUE(d.wave_done);
  EXPECT_EQ(d.kind, Kind::kWait);
  EXPECT_NE(d.waiting.find("wave 1 of 2: check error-ratio: first measurement at"),
            std::string::npos)
      << d.waiting;
  Measured(s, {M(MeasureOutcome::kPass)});
  d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kWait);
  EXPECT_NE(d.waiting.find("1 of 3 measurement(s) taken"), std::string::npos) << d.waiting;
  Measured(s, {M(MeasureOutcome::kPass), M(MeasureOutcome::kPass), M(MeasureOutcome::kPass)});
  d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kAssign);
  EXPECT_EQ(d.wave, 1);
}

TEST(MetricCheckTest, AFailedCheckRollsTheWaveBackOrHaltsIt) {
  RolloutSnapshot s = Checked(/*auto_rollback=*/true);
  Measured(s, {M(MeasureOutcome::kPass), M(MeasureOutcome::kFail)});
  RolloutDecision d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kRollBack);
  EXPECT_NE(d.reason.find("wave 1 of 2: check error-ratio failed"), std::string::npos) << d.reason;
  s = Checked(/*auto_rollback=*/false);
  Measured(s, {M(MeasureOutcome::kFail)});
  d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kHalt);
  EXPECT_TRUE(d.outcome.halted);
  // A person who resumed past the wave accepted its checks too.
  s.accepted_wave = 0;
  d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kAssign);
}

TEST(MetricCheckTest, AnInconclusiveCheckPausesForAPerson) {
  RolloutSnapshot s = Checked();
  Measured(s, {M(MeasureOutcome::kInconclusive)});
  RolloutDecision d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kPause);
  EXPECT_EQ(d.pause_kind, kPausedByCheck);
  EXPECT_NE(d.waiting.find("check error-ratio inconclusive"), std::string::npos) << d.waiting;
  EXPECT_NE(d.waiting.find("fabu release resume R-7"), std::string::npos) << d.waiting;
  // Paused by a check, the rollout does not go on by itself.
  s.state = ReleaseState::kPaused;
  s.pause_kind = std::string(kPausedByCheck);
  EXPECT_EQ(DecideRollout(s).kind, Kind::kNothing);
}

TEST(MetricCheckTest, ADryRunCheckNeverHoldsAWave) {
  RolloutSnapshot s = Checked(true, /*dry_run=*/true);
  // The wave just ended: no pause between waves, and the check does not hold it.
  EXPECT_EQ(DecideRollout(s).kind, Kind::kAssign);
  Measured(s, {M(MeasureOutcome::kFail)});  // would have failed it
  RolloutDecision d = DecideRollout(s);
  EXPECT_EQ(d.kind, Kind::kAssign) << d.waiting;
}

TEST(MetricCheckTest, TheLastWavesChecksComeBeforeTheReleaseIsDeployed) {
  RolloutSnapshot s = Checked();
  s.current_wave = 1;
  s.wave = {8, 8, 8, 8, 0};
  s.outcome.hosts = 10;
  s.outcome.succeeded = 10;
  Measured(s, {M(MeasureOutcome::kPass)});
  EXPECT_EQ(DecideRollout(s).kind, Kind::kWait);
  Measured(s, {M(MeasureOutcome::kPass), M(MeasureOutcome::kPass), M(MeasureOutcome::kPass)});
  EXPECT_EQ(DecideRollout(s).kind, Kind::kFinish);
}

}  // namespace
}  // namespace fabu::coordinator::release
