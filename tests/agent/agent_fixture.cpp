#include "tests/agent/agent_fixture.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "packaging/package.hpp"
#include "packaging/sha256.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::agent::testing {

namespace fs = std::filesystem;

std::vector<std::string> RecordingSink::Steps() const {
  std::vector<std::string> steps;
  for (const auto& e : events) steps.emplace_back(StepName(e.step));
  return steps;
}

std::string RecordingHook(const std::string& name) {
  return "#!/bin/sh\n"
         "log=\"$FABU_APPS_ROOT/../hooklog\"\n"
         "mkdir -p \"$log\"\n"
         "echo \"" +
         name +
         " $FABU_VERSION\" >> \"$log/order\"\n"
         "env | grep '^FABU_' | sort > \"$log/" +
         name +
         "-$FABU_VERSION.env\"\n"
         "echo \"" +
         name +
         " of $FABU_VERSION says hello\"\n"
         "if [ -e \"$FABU_APPS_ROOT/FAIL_" +
         name +
         "_$FABU_VERSION\" ]; then\n"
         "  echo \"" +
         name +
         " failing on purpose\" >&2\n"
         "  exit 1\n"
         "fi\n"
         "exit 0\n";
}

std::string CountingHealthCheck(int fail_from) {
  return "#!/bin/sh\n"
         "log=\"$FABU_APPS_ROOT/../hooklog\"\n"
         "mkdir -p \"$log\"\n"
         "n=$(cat \"$log/checks-$FABU_VERSION\" 2>/dev/null || echo 0)\n"
         "n=$((n + 1))\n"
         "echo \"$n\" > \"$log/checks-$FABU_VERSION\"\n"
         "echo \"health_check $FABU_VERSION\" >> \"$log/order\"\n"
         "if [ " +
         std::to_string(fail_from) + " -gt 0 ] && [ \"$n\" -ge " + std::to_string(fail_from) +
         " ]; then\n"
         "  echo \"unhealthy on check $n\"\n"
         "  exit 1\n"
         "fi\n"
         "echo \"healthy on check $n\"\n"
         "exit 0\n";
}

std::map<std::string, std::string> AllRecordingHooks() {
  std::map<std::string, std::string> hooks;
  for (auto name : packaging::kHookNames) {
    hooks.emplace(std::string(name), RecordingHook(std::string(name)));
  }
  return hooks;
}

BuiltPackage MakePackage(const fs::path& work_dir, const PackageSpec& spec,
                         const packaging::SigningKey& key) {
  const fs::path src = work_dir / ("src-" + spec.name + "-" + spec.version);
  fs::remove_all(src);
  fs::create_directories(src / "tree");
  for (const auto& [path, content] : spec.files) {
    fabu::testing::WriteFile(src / "tree" / path, content);
  }
  packaging::BuildOptions options;
  options.name = spec.name;
  options.version = *protocol::Version::Parse(spec.version);
  options.from = src / "tree";
  if (!spec.hooks.empty()) {
    fs::create_directories(src / "hooks");
    for (const auto& [name, script] : spec.hooks) {
      fabu::testing::WriteFile(src / "hooks" / name, script);
      fs::permissions(src / "hooks" / name, fs::perms(0755));
    }
    options.hooks = src / "hooks";
  }
  options.expires = spec.expires;
  options.targets = spec.targets;
  options.out = work_dir / (spec.name + "-" + spec.version + ".fabu");
  options.created = 1'790'000'000;
  auto built = packaging::BuildPackage(options, key);
  EXPECT_TRUE(built) << built.error().message();
  BuiltPackage result;
  result.path = options.out;
  result.sha256 = *packaging::Sha256::OfFile(options.out);
  if (built) result.manifest = built->manifest;
  return result;
}

std::map<std::string, std::string> Snapshot(const fs::path& root) {
  std::map<std::string, std::string> snapshot;
  std::error_code ec;
  if (!fs::exists(root, ec)) return snapshot;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    const std::string rel = fs::relative(it->path(), root).string();
    if (it->is_symlink()) {
      snapshot[rel] = "link " + fs::read_symlink(it->path()).string();
    } else if (it->is_directory()) {
      snapshot[rel] = "dir";
    } else {
      snapshot[rel] = "file " + *packaging::Sha256::OfFile(it->path());
    }
  }
  return snapshot;
}

std::vector<std::string> CompareWithManifest(const fs::path& release_dir,
                                             const packaging::Manifest& manifest) {
  std::vector<std::string> problems;
  std::size_t expected = 0;
  for (const auto& entry : manifest.files) {
    ++expected;
    const fs::path path = release_dir / entry.path;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      problems.push_back(entry.path + ": missing");
      continue;
    }
    switch (entry.type) {
      case packaging::EntryType::kDir:
        if (!S_ISDIR(st.st_mode)) problems.push_back(entry.path + ": not a directory");
        break;
      case packaging::EntryType::kSymlink:
        if (!S_ISLNK(st.st_mode) || fs::read_symlink(path).string() != entry.target) {
          problems.push_back(entry.path + ": wrong link");
        }
        break;
      case packaging::EntryType::kFile:
        if (!S_ISREG(st.st_mode)) {
          problems.push_back(entry.path + ": not a file");
        } else if (*packaging::Sha256::OfFile(path) != entry.sha256) {
          problems.push_back(entry.path + ": content differs");
        } else if ((st.st_mode & 07777) != entry.mode) {
          problems.push_back(entry.path + ": mode differs");
        }
        break;
    }
  }
  std::size_t found = 0;
  for (auto it = fs::recursive_directory_iterator(release_dir);
       it != fs::recursive_directory_iterator(); ++it) {
    ++found;
  }
  if (found != expected) {
    problems.push_back("the release holds " + std::to_string(found) + " entries, the manifest " +
                       std::to_string(expected));
  }
  return problems;
}

std::vector<std::string> EntriesStartingWith(const fs::path& dir, const std::string& prefix) {
  std::vector<std::string> names;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(prefix)) names.push_back(name);
  }
  return names;
}

std::string AgentBinary() { return FABU_AGENT_PATH; }

}  // namespace fabu::agent::testing
