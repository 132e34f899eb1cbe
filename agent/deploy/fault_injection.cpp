#include "agent/deploy/fault_injection.hpp"

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace fabu::agent {

#ifdef FABU_FAULT_INJECTION

bool FaultInjectionCompiledIn() { return true; }

void CrashPoint(Step step) {
  static const std::string crash_at = [] {
    const char* value = std::getenv("FABU_AGENT_CRASH_AT");
    return std::string(value == nullptr ? "" : value);
  }();
  if (!crash_at.empty() && crash_at == StepName(step)) ::_exit(kInjectedCrashExitCode);
}

#else

bool FaultInjectionCompiledIn() { return false; }

void CrashPoint(Step /*step*/) {}

#endif

}  // namespace fabu::agent
