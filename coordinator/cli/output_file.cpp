#include "coordinator/cli/output_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

namespace fabu::cli {

Result<void> WriteOutput(const std::string& content, const std::string& path) {
  if (path.empty()) {
    std::cout << content;
    if (!content.empty() && content.back() != '\n') std::cout << "\n";
    return {};
  }
  const std::string temp = path + ".tmp";
  auto fail = [&](const char* what) {
    const std::string reason = std::strerror(errno);
    ::unlink(temp.c_str());
    return Fail(ErrorCode::kIo, "--out " + path + ": " + what + ": " + reason);
  };
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return Fail(ErrorCode::kIo, "--out " + path + ": cannot create: " + std::strerror(errno));
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return fail("cannot write");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return fail("cannot sync");
  }
  ::close(fd);
  if (std::rename(temp.c_str(), path.c_str()) != 0) return fail("cannot rename into place");
  return {};
}

}  // namespace fabu::cli
