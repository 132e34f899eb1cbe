#include "protocol/agent_api.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace fabu::protocol {
namespace {

using nlohmann::json;

Assignment SampleAssignment() {
  Assignment a;
  a.deployment = "D-7";
  a.release = "R-12";
  a.app = "c3m-video";
  a.version = "V1.3.0.12";
  a.package_id = std::string(64, 'a');
  a.package_size = 1234;
  a.package_url = std::string(kAgentPackagesPath) + a.package_id;
  a.host_timeout_seconds = 900;
  return a;
}

TEST(AgentApiTest, AssignmentRoundTrips) {
  auto back = AssignmentResponseFromJson(AssignmentResponseToJson(SampleAssignment()));
  ASSERT_TRUE(back) << back.error().message();
  ASSERT_TRUE(back->has_value());
  EXPECT_EQ(AssignmentToJson(**back), AssignmentToJson(SampleAssignment()));
  auto none = AssignmentResponseFromJson(AssignmentResponseToJson(std::nullopt));
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
}

TEST(AgentApiTest, ObservationFieldsRoundTripAndAreOptional) {
  Assignment observed = SampleAssignment();
  observed.observe_seconds = 600;
  observed.observe_interval_seconds = 30;
  const json j = AssignmentToJson(observed);
  EXPECT_EQ(j.at("observe_seconds"), 600);
  EXPECT_EQ(j.at("observe_interval_seconds"), 30);
  auto back = AssignmentFromJson(j);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->observe_seconds, 600);
  EXPECT_EQ(back->observe_interval_seconds, 30);
  // Given a message from before observation existed, we should read 0 (none),
  // and without observation we should not send the fields an older agent
  // would refuse as unknown.
  const json plain = AssignmentToJson(SampleAssignment());
  EXPECT_FALSE(plain.contains("observe_seconds"));
  EXPECT_FALSE(plain.contains("observe_interval_seconds"));
  auto old = AssignmentFromJson(plain);
  ASSERT_TRUE(old) << old.error().message();
  EXPECT_EQ(old->observe_seconds, 0);
  EXPECT_EQ(old->observe_interval_seconds, 0);
}

TEST(AgentApiTest, ObservationFieldsMustBeNonNegativeAndBounded) {
  json j = AssignmentToJson(SampleAssignment());
  j["observe_seconds"] = -5;
  auto a = AssignmentFromJson(j, "assignment");
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message().find("assignment.observe_seconds: must be"), std::string::npos)
      << a.error().message();
  j["observe_seconds"] = 60;
  j["observe_interval_seconds"] = 1LL << 40;
  a = AssignmentFromJson(j);
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message().find("observe_interval_seconds: at most a year"), std::string::npos)
      << a.error().message();
}

TEST(AgentApiTest, ObservingIsAReportedStepBetweenHealthCheckingAndSucceeded) {
  auto step = ParseStep("observing");
  ASSERT_TRUE(step) << step.error().message();
  EXPECT_EQ(*step, Step::kObserving);
  EXPECT_EQ(StepName(Step::kObserving), "observing");
  EXPECT_TRUE(IsReportedStep(Step::kObserving));
  EXPECT_FALSE(IsBeforeActivating(Step::kObserving));
  EXPECT_EQ(ReportedStepOf(Step::kObserving), Step::kObserving);
  DeploymentEvent e;
  e.deployment = "D-7";
  e.sequence = 6;
  e.step = Step::kFailed;
  e.failed_step = Step::kObserving;
  e.time = 1764100000;
  auto back = EventFromJson(EventToJson(e));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(*back, e);
}

// Found by fuzzing: a sequence of 9.7e28 was cast to an integer (undefined).
TEST(AgentApiTest, AnEventsSequenceMustBeAWholeNumberInRange) {
  DeploymentEvent e;
  e.deployment = "D-7";
  e.sequence = 6;
  e.step = Step::kAssigned;
  e.time = 1764100000;
  for (const json& bad : {json(9.6666666666666666e28), json(-1), json(1.5), json("6")}) {
    json j = EventToJson(e);
    j["sequence"] = bad;
    auto parsed = EventFromJson(j);
    ASSERT_FALSE(parsed) << bad;
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(parsed.error().message().find("sequence: must be a whole number"), std::string::npos)
        << parsed.error().message();
  }
  json j = EventToJson(e);
  j["sequence"] = std::numeric_limits<std::uint64_t>::max();
  auto largest = EventFromJson(j);
  ASSERT_TRUE(largest) << largest.error().message();
  EXPECT_EQ(largest->sequence, std::numeric_limits<std::uint64_t>::max());
}

TEST(AgentApiTest, AnInstallNeedsAPackage) {
  json j = AssignmentToJson(SampleAssignment());
  j["package_id"] = "";
  auto a = AssignmentFromJson(j);
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message().find("package"), std::string::npos);
  j["kind"] = "rollback";
  EXPECT_TRUE(AssignmentFromJson(j));
}

TEST(AgentApiTest, UnknownFieldsAndWrongTypesAreNamed) {
  json j = AssignmentToJson(SampleAssignment());
  j["colour"] = "red";
  EXPECT_NE(AssignmentFromJson(j, "assignment").error().message().find("assignment.colour"),
            std::string::npos);
  j = AssignmentToJson(SampleAssignment());
  j["package_size"] = "big";
  EXPECT_NE(AssignmentFromJson(j).error().message().find("package_size: must be"),
            std::string::npos);
  j = AssignmentToJson(SampleAssignment());
  j["kind"] = "reboot";
  EXPECT_NE(AssignmentFromJson(j).error().message().find("reboot"), std::string::npos);
}

TEST(AgentApiTest, EnrollRequestRoundTripsWithInventory) {
  EnrollRequest r;
  r.token = "t";
  r.name = "gz-video-01";
  r.labels = {{"env", "test"}, {"site", "gz"}};
  r.inventory.hostname = "gz-video-01";
  r.inventory.os = "linux";
  r.inventory.cpus = 8;
  r.inventory.memory_bytes = 1ull << 34;
  r.inventory.apps = {{"c3m-video", "V1.2.0.3", {"V1.1.0.0", "V1.2.0.3"}}};
  auto back = EnrollRequestFromJson(EnrollRequestToJson(r));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(EnrollRequestToJson(*back), EnrollRequestToJson(r));
  json j = EnrollRequestToJson(r);
  j["inventory"]["apps"][0]["releases"] = {1};
  EXPECT_NE(EnrollRequestFromJson(j).error().message().find("inventory.apps[0].releases"),
            std::string::npos);
}

TEST(AgentApiTest, EventsAndAcksRoundTrip) {
  DeploymentEvent e;
  e.deployment = "D-7";
  e.sequence = 3;
  e.step = Step::kFailed;
  e.failed_step = Step::kHealthChecking;
  e.message = "health check exited 1";
  e.time = 1764100000;
  auto batch = EventBatchFromJson(EventBatchToJson({{e}}));
  ASSERT_TRUE(batch) << batch.error().message();
  ASSERT_EQ(batch->events.size(), 1u);
  EXPECT_EQ(batch->events[0], e);
  auto ack = EventAckFromJson(EventAckToJson({{{"D-7", 3}}}));
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->through.at("D-7"), 3u);
}

}  // namespace
}  // namespace fabu::protocol
