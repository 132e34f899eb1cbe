// Releasing clean file-backed pages never loses content: read-only file
// pages come back from the file, copied-on-write and anonymous pages are kept.
#include "agent/run/resident_pages.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "tests/support/temp_dir.hpp"

namespace fabu::agent {
namespace {

TEST(ResidentPagesTest, ReleasesCleanFilePagesAndKeepsEveryCopiedOne) {
  fabu::testing::TempDir dir;
  const std::string path = (dir.path() / "data").string();
  const std::string content(1 << 20, 'f');
  fabu::testing::WriteFile(path, content);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  // A clean read-only mapping, and a private one written to (copied on write).
  auto* clean = static_cast<char*>(::mmap(nullptr, content.size(), PROT_READ, MAP_PRIVATE, fd, 0));
  auto* copied = static_cast<char*>(
      ::mmap(nullptr, content.size(), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0));
  ::close(fd);
  ASSERT_NE(clean, MAP_FAILED);
  ASSERT_NE(copied, MAP_FAILED);
  long sum = 0;
  for (std::size_t i = 0; i < content.size(); i += 4096) sum += clean[i];
  EXPECT_EQ(sum, 'f' * static_cast<long>(content.size() / 4096));
  copied[0] = 'c';
  ::mprotect(copied, content.size(), PROT_READ);  // like RELRO after relocation
  std::string heap(1 << 20, 'h');

  EXPECT_GT(ReleaseCleanFileMappings(), content.size() - 1);

  EXPECT_EQ(std::string(clean, content.size()), content);
  EXPECT_EQ(copied[0], 'c');
  EXPECT_EQ(copied[1], 'f');
  EXPECT_EQ(heap, std::string(1 << 20, 'h'));
  ::munmap(clean, content.size());
  ::munmap(copied, content.size());
}

}  // namespace
}  // namespace fabu::agent
