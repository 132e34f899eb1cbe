// The crash switch for fault-injection tests.
//
// In builds configured with -DFABU_FAULT_INJECTION=ON (the default when tests
// are built; release and package builds turn it off), setting
// FABU_AGENT_CRASH_AT=<step> in the agent's environment makes the process
// _exit(137) the moment the journal has recorded that step, before the step
// is carried out: the state a kill -9 at that instant would leave. In other
// builds CrashPoint does nothing and the variable is ignored.
#pragma once

#include "agent/deploy/deployment_event.hpp"

namespace fabu::agent {

inline constexpr int kInjectedCrashExitCode = 137;

// True when this build honours FABU_AGENT_CRASH_AT.
bool FaultInjectionCompiledIn();

// Exits the process at once when FABU_AGENT_CRASH_AT names `step`.
void CrashPoint(Step step);

}  // namespace fabu::agent
