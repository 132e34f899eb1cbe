// The inventory a host reports (protocol::Inventory): at enrollment, on start
// and after every deployment.
//
// Facts come from uname(2), gethostname(2) and sysconf(3); installed apps from
// InstallLayout::Inventory. Only reading the apps root can fail (kIo with the
// path); unknown host facts are left empty or zero.
#pragma once

#include <string>

#include "agent/install/install_layout.hpp"
#include "protocol/agent_api.hpp"
#include "protocol/error.hpp"

namespace fabu::agent {

// gethostname(2), or "" when unknown.
std::string LocalHostname();

Result<protocol::Inventory> CollectInventory(const InstallLayout& layout);

}  // namespace fabu::agent
