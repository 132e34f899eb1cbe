#include "agent/run/resident_pages.hpp"

#include <sys/mman.h>

#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace fabu::agent {

namespace {

struct Mapping {
  std::uintptr_t start = 0;
  std::uintptr_t end = 0;
  bool candidate = false;  // private, read-only, file-backed
  bool copied = false;     // holds anonymous (copied-on-write) pages
};

}  // namespace

std::size_t ReleaseCleanFileMappings() {
  std::ifstream smaps("/proc/self/smaps");
  if (!smaps) return 0;
  std::vector<Mapping> mappings;
  std::string line;
  while (std::getline(smaps, line)) {
    std::uintptr_t start = 0, end = 0;
    char perms[5] = {};
    unsigned long long offset = 0, inode = 0;
    char device[16] = {};
    int path_at = 0;
    // A mapping's header: "start-end perms offset dev inode [path]"; the
    // other lines are "Name: value kB".
    if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR " %4s %llx %15s %llu %n", &start, &end,
                    perms, &offset, device, &inode, &path_at) == 6) {
      Mapping m;
      m.start = start;
      m.end = end;
      const bool file = inode != 0 && path_at > 0 &&
                        static_cast<std::size_t>(path_at) < line.size() && line[path_at] == '/';
      m.candidate = file && perms[0] == 'r' && perms[1] == '-' && perms[3] == 'p';
      mappings.push_back(m);
      continue;
    }
    unsigned long long kb = 0;
    if (!mappings.empty() && std::sscanf(line.c_str(), "Anonymous: %llu kB", &kb) == 1 && kb > 0) {
      mappings.back().copied = true;
    }
  }
  std::size_t released = 0;
  for (const Mapping& m : mappings) {
    if (!m.candidate || m.copied || m.end <= m.start) continue;
    // NOLINTNEXTLINE(performance-no-int-to-ptr): addresses read from smaps
    void* address = reinterpret_cast<void*>(m.start);
    if (::madvise(address, m.end - m.start, MADV_DONTNEED) == 0) released += m.end - m.start;
  }
  return released;
}

}  // namespace fabu::agent
