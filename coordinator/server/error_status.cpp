#include "coordinator/server/error_status.hpp"

#include <string>

namespace fabu::coordinator {

nlohmann::json ErrorBody(const Error& error) {
  return {{"error",
           {{"code", std::string(ErrorCodeName(error.code()))}, {"message", error.message()}}}};
}

}  // namespace fabu::coordinator
