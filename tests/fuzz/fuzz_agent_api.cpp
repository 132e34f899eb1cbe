// The agent API's JSON both ways (protocol/agent_api.hpp): what an agent
// sends the coordinator (enrollment, inventory, event batches) and what the
// coordinator sends an agent (enrollment answer, assignments, acks,
// pre-flight questions and their answers).
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "protocol/agent_api.hpp"
#include "protocol/deployment_event.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
  if (value.is_discarded()) return 0;
  namespace p = fabu::protocol;
  // What a side accepted it can write back as JSON without throwing.
  auto strict = [](const nlohmann::json& out) {
    (void)out.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  };
  if (auto r = p::EnrollRequestFromJson(value)) strict(p::EnrollRequestToJson(*r));
  if (auto r = p::EnrollResponseFromJson(value)) strict(p::EnrollResponseToJson(*r));
  if (auto r = p::InventoryFromJson(value)) strict(p::InventoryToJson(*r));
  if (auto r = p::EventBatchFromJson(value)) strict(p::EventBatchToJson(*r));
  if (auto r = p::EventAckFromJson(value)) strict(p::EventAckToJson(*r));
  if (auto r = p::AssignmentResponseFromJson(value)) strict(p::AssignmentResponseToJson(*r));
  if (auto r = p::AssignmentFromJson(value)) strict(p::AssignmentToJson(*r));
  if (auto r = p::PreflightOfAssignmentResponse(value); r && *r) {
    strict(p::PreflightRequestToJson(**r));
  }
  if (auto r = p::PreflightAnswerFromJson(value)) strict(p::PreflightAnswerToJson(*r));
  (void)p::EventFromJson(value);
  return 0;
}
