// `fabu keygen` and `fabu pack build|verify|inspect|extract`: publisher keys
// and signed packages (docs/package-format.md).
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "coordinator/cli/commands.hpp"
#include "fmt/format.h"
#include "packaging/keys.hpp"
#include "packaging/package.hpp"

namespace fabu::cli {
namespace {

namespace fs = std::filesystem;

std::string HumanSize(std::uint64_t bytes) {
  if (bytes >= (1ull << 30))
    return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (1 << 30));
  if (bytes >= (1ull << 20))
    return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
  if (bytes >= (1ull << 10))
    return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / (1 << 10));
  return fmt::format("{} B", bytes);
}

// Loads every --trust key; reports the first bad one.
Result<packaging::TrustStore> LoadTrust(const std::vector<std::string>& files) {
  packaging::TrustStore trust;
  for (const auto& f : files) {
    if (auto ok = trust.AddFile(f); !ok) return std::unexpected(ok.error().WithContext("--trust"));
  }
  return trust;
}

Result<std::map<std::string, std::string>> ParseTargets(const std::vector<std::string>& items) {
  std::map<std::string, std::string> out;
  for (const auto& item : items) {
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Fail(ErrorCode::kInvalidArgument,
                  fmt::format("--target \"{}\": expected KEY=VALUE, e.g. os=linux", item));
    }
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

std::string Summary(const packaging::VerifiedPackage& p) {
  std::size_t files = 0;
  for (const auto& e : p.manifest.files) files += e.type == packaging::EntryType::kFile;
  return fmt::format(
      "{} {}: signature by key {} valid, {} files ({}) match, payload {} {} "
      "sha256 ok, package id {}",
      p.manifest.name, p.manifest.version.ToString(), p.manifest.key_id, files,
      HumanSize(p.manifest.TotalFileBytes()),
      packaging::CompressionName(p.manifest.payload.compression),
      HumanSize(p.manifest.payload.size), p.package_sha256);
}

void PrintManifest(const packaging::Manifest& m) {
  std::cout << "name:      " << m.name << "\n"
            << "version:   " << m.version.ToString() << "\n"
            << "created:   " << m.created << "\n"
            << "key id:    " << m.key_id << "\n"
            << "payload:   " << m.payload.file << " ("
            << packaging::CompressionName(m.payload.compression) << ", "
            << HumanSize(m.payload.size) << ", sha256 " << m.payload.sha256 << ")\n";
  if (m.expires) std::cout << "expires:   " << *m.expires << "\n";
  for (const auto& [k, v] : m.targets) std::cout << "target:    " << k << "=" << v << "\n";
  for (const auto& [hook, path] : m.hooks)
    std::cout << "hook:      " << hook << " -> " << path << "\n";
  std::cout << "files:     " << m.files.size() << " entries, " << HumanSize(m.TotalFileBytes())
            << "\n";
  for (const auto& e : m.files) {
    switch (e.type) {
      case packaging::EntryType::kDir:
        std::cout << fmt::format("  d {:04o} {:>12} {}/\n", e.mode, "", e.path);
        break;
      case packaging::EntryType::kFile:
        std::cout << fmt::format("  f {:04o} {:>12} {}  {}\n", e.mode, e.size, e.path,
                                 e.sha256.substr(0, 16));
        break;
      case packaging::EntryType::kSymlink:
        std::cout << fmt::format("  l      {:>12} {} -> {}\n", "", e.path, e.target);
        break;
    }
  }
}

}  // namespace

void RegisterPackCommands(CLI::App& app, int& exit_code) {
  // fabu keygen
  auto* keygen = app.add_subcommand("keygen", "Make an Ed25519 publisher key pair");
  auto prefix = std::make_shared<std::string>();
  keygen->add_option("--out", *prefix, "Writes PREFIX.key (0600) and PREFIX.pub")->required();
  keygen->callback([&exit_code, prefix] {
    auto key = packaging::SigningKey::Generate();
    if (key) {
      if (auto ok = key->WriteFiles(*prefix); !ok) key = std::unexpected(ok.error());
    }
    if (!key) {
      std::cerr << "fabu keygen: " << key.error().message() << "\n";
      exit_code = 1;
      return;
    }
    std::cerr << "wrote " << *prefix << ".key (private, keep it offline) and " << *prefix
              << ".pub\n";
    std::cout << key->public_key().key_id() << "\n";
  });

  auto* pack = app.add_subcommand("pack", "Build, verify, inspect and extract signed packages");
  pack->require_subcommand(1);

  // fabu pack build
  struct BuildArgs {
    std::string name, version, from, key, hooks, compression = "gzip", expires, out;
    std::vector<std::string> targets;
  };
  auto b = std::make_shared<BuildArgs>();
  auto* build = pack->add_subcommand("build", "Build and sign NAME-V.fabu from a directory");
  build->add_option("--name", b->name, "Package name, e.g. c3m-video")->required();
  build->add_option("--version", b->version, "Version Va.b.c.d")->required();
  build->add_option("--from", b->from, "Application tree to package")->required();
  build->add_option("--key", b->key, "Publisher private key (PREFIX.key)")->required();
  build->add_option("--hooks", b->hooks, "Directory of hook executables (pre_install, ...)");
  build->add_option("--compression", b->compression, "gzip (default) or zstd");
  build->add_option("--expires", b->expires, "Expiry time, RFC 3339 (2027-06-01T00:00:00Z)");
  build->add_option("--target", b->targets, "Target constraint KEY=VALUE (os=linux, arch=x86_64)");
  build->add_option("--out", b->out, "Output file (default NAME-V.fabu)");
  build->callback([&exit_code, b] {
    auto fail = [&](const Error& e) {
      std::cerr << "fabu pack build: " << e.message() << "\n";
      exit_code = e.code() == ErrorCode::kInvalidArgument ? 2 : 1;
    };
    auto version = protocol::Version::Parse(b->version);
    if (!version) return fail(version.error().WithContext("--version"));
    auto compression = packaging::ParseCompression(b->compression);
    if (!compression) return fail(compression.error().WithContext("--compression"));
    auto targets = ParseTargets(b->targets);
    if (!targets) return fail(targets.error());
    auto key = packaging::SigningKey::FromPemFile(b->key);
    if (!key) return fail(key.error().WithContext("--key"));
    packaging::BuildOptions options;
    options.name = b->name;
    options.version = *version;
    options.from = b->from;
    if (!b->hooks.empty()) options.hooks = b->hooks;
    options.compression = *compression;
    if (!b->expires.empty()) options.expires = b->expires;
    options.targets = *targets;
    options.out =
        b->out.empty() ? fs::path(b->name + "-" + version->ToString() + ".fabu") : fs::path(b->out);
    auto built = packaging::BuildPackage(options, *key);
    if (!built) return fail(built.error());
    std::cerr << fmt::format("built {} {}: {} entries, {} of files, payload {} {}, signed by {}\n",
                             built->manifest.name, built->manifest.version.ToString(),
                             built->manifest.files.size(),
                             HumanSize(built->manifest.TotalFileBytes()),
                             packaging::CompressionName(built->manifest.payload.compression),
                             HumanSize(built->manifest.payload.size), built->manifest.key_id);
    std::cout << built->path.string() << "\n";
  });

  // fabu pack verify
  struct VerifyArgs {
    std::string file;
    std::vector<std::string> trust;
  };
  auto v = std::make_shared<VerifyArgs>();
  auto* verify = pack->add_subcommand("verify", "Check a package completely; write nothing");
  verify->add_option("FILE", v->file, "Package file")->required();
  verify->add_option("--trust", v->trust, "Trusted publisher key (PEM), repeatable")->required();
  verify->callback([&exit_code, v] {
    auto trust = LoadTrust(v->trust);
    if (!trust) {
      std::cerr << "fabu pack verify: " << trust.error().message() << "\n";
      exit_code = 2;
      return;
    }
    auto verified = packaging::VerifyPackage(v->file, *trust);
    if (!verified) {
      std::cerr << "fabu pack verify: REFUSED " << verified.error().message() << "\n";
      exit_code = 1;
      return;
    }
    std::cout << "OK " << Summary(*verified) << "\n";
  });

  // fabu pack inspect
  struct InspectArgs {
    std::string file;
    bool json = false;
  };
  auto i = std::make_shared<InspectArgs>();
  auto* inspect = pack->add_subcommand("inspect", "Show a package's manifest (not verified)");
  inspect->add_option("FILE", i->file, "Package file")->required();
  inspect->add_flag("--json", i->json, "Print manifest.json exactly as signed");
  inspect->callback([&exit_code, i] {
    std::string raw;
    auto manifest = packaging::ReadManifestUnverified(i->file, &raw);
    if (!manifest) {
      std::cerr << "fabu pack inspect: " << manifest.error().message() << "\n";
      exit_code = 1;
      return;
    }
    if (i->json) {
      std::cout << raw;
      return;
    }
    PrintManifest(*manifest);
    std::cout << "(signature not checked: use `fabu pack verify FILE --trust KEY.pub`)\n";
  });

  // fabu pack extract
  struct ExtractArgs {
    std::string file, to;
    std::vector<std::string> trust;
    bool no_sync = false;
  };
  auto x = std::make_shared<ExtractArgs>();
  auto* extract = pack->add_subcommand("extract", "Verify, then extract the payload into DIR");
  extract->add_option("FILE", x->file, "Package file")->required();
  extract->add_option("--trust", x->trust, "Trusted publisher key (PEM), repeatable")->required();
  extract->add_option("--to", x->to, "Destination directory: absent or empty")->required();
  extract->add_flag("--no-sync", x->no_sync,
                    "Do not flush the tree to disk before returning (not crash-safe)");
  extract->callback([&exit_code, x] {
    auto trust = LoadTrust(x->trust);
    if (!trust) {
      std::cerr << "fabu pack extract: " << trust.error().message() << "\n";
      exit_code = 2;
      return;
    }
    packaging::VerifyOptions options;
    options.durable = !x->no_sync;
    auto extracted = packaging::ExtractPackage(x->file, *trust, x->to, options);
    if (!extracted) {
      std::cerr << "fabu pack extract: REFUSED " << extracted.error().message()
                << " (nothing was extracted)\n";
      exit_code = 1;
      return;
    }
    std::cout << "OK " << Summary(*extracted) << ", extracted to " << x->to << "\n";
  });
}

}  // namespace fabu::cli
