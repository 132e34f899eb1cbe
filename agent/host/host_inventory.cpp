#include "agent/host/host_inventory.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>

#include "protocol/build_info.hpp"

namespace fabu::agent {

std::string LocalHostname() {
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0) return {};
  return std::string(name.data());
}

Result<protocol::Inventory> CollectInventory(const InstallLayout& layout) {
  protocol::Inventory inventory;
  inventory.hostname = LocalHostname();
  struct utsname uts {};
  if (::uname(&uts) == 0) {
    inventory.os = uts.sysname;
    std::ranges::transform(inventory.os, inventory.os.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    inventory.kernel = uts.release;
    inventory.arch = uts.machine;
  }
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  inventory.cpus = cpus > 0 ? static_cast<std::uint32_t>(cpus) : 0;
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) {
    inventory.memory_bytes =
        static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size);
  }
  inventory.agent_version = std::string(BuildVersion());
  std::error_code ec;
  if (!std::filesystem::exists(layout.apps_root(), ec)) return inventory;  // nothing installed yet
  auto apps = layout.Inventory();
  if (!apps) return std::unexpected(apps.error().WithContext("listing installed applications"));
  for (const auto& app : *apps) {
    protocol::InstalledApp entry;
    entry.name = app.name;
    entry.current = app.current ? app.current->ToString() : "";
    for (const auto& v : app.releases) entry.releases.push_back(v.ToString());
    inventory.apps.push_back(std::move(entry));
  }
  return inventory;
}

}  // namespace fabu::agent
