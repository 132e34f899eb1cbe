// Deployment steps and events are protocol messages (protocol/deployment_event.hpp);
// the agent speaks of them by these names. EventSink is where the agent sends
// events as they happen (stdout for the local driver, the coordinator when
// networked). Publish must not fail the deployment: delivery is at least once
// from the journal, which holds every event until acknowledged.
#pragma once

#include "protocol/deployment_event.hpp"

namespace fabu::agent {

using protocol::DeploymentEvent;
using protocol::DeploymentKind;
using protocol::DeploymentKindName;
using protocol::EventFromJson;
using protocol::EventToJson;
using protocol::EventToJsonLine;
using protocol::IsBeforeActivating;
using protocol::IsReportedStep;
using protocol::ParseDeploymentKind;
using protocol::ParseStep;
using protocol::ReportedStepOf;
using protocol::Step;
using protocol::StepName;

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void Publish(const DeploymentEvent& event) = 0;
};

}  // namespace fabu::agent
