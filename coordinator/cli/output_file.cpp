#include "coordinator/cli/output_file.hpp"

#include <iostream>

#include "platform/fs/files.hpp"

namespace fabu::cli {

Result<void> WriteOutput(const std::string& content, const std::string& path) {
  if (path.empty()) {
    std::cout << content;
    if (!content.empty() && content.back() != '\n') std::cout << "\n";
    return {};
  }
  return WithContext(platform::WriteFileDurably(path, content, 0644), "--out " + path);
}

}  // namespace fabu::cli
