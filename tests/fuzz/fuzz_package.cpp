// A whole .fabu package as an agent downloads it (packaging/package.hpp):
// the container, the signed header, the compressed tar payload and every
// entry checked against the manifest while it is extracted.
//
// The seed packages (tests/fuzz/corpus/package/) are signed by the test key
// in tests/fuzz/keys/, which this target trusts: a mutation after the
// signature (the payload, its tar headers, its entries) reaches the tar
// reader and the entry checks; a mutation of the signed manifest stops at the
// signature, and fuzz_manifest covers the manifest's parser.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "packaging/keys.hpp"
#include "packaging/package.hpp"

namespace fs = std::filesystem;

namespace {

struct Scratch {
  fs::path dir;
  fabu::packaging::TrustStore trust;

  Scratch() {
    char pattern[] = "/tmp/fabu-fuzz-package-XXXXXX";
    if (mkdtemp(pattern) == nullptr) std::abort();
    dir = pattern;
    if (!trust.AddFile(FABU_FUZZ_TRUSTED_KEY)) std::abort();
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

Scratch& State() {
  static Scratch scratch;
  return scratch;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Scratch& s = State();
  const fs::path file = s.dir / "input.fabu";
  const fs::path dest = s.dir / "tree";
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  fabu::packaging::VerifyOptions options;
  options.durable = false;
  options.now = 1'800'000'000;  // 2027-01-15: inside the seed packages' validity
  (void)fabu::packaging::VerifySignatureAndDigest(file, s.trust, options);
  (void)fabu::packaging::ExtractPackage(file, s.trust, dest, options);
  std::string manifest_json;
  (void)fabu::packaging::ReadManifestUnverified(file, &manifest_json);
  std::error_code ec;
  fs::remove_all(dest, ec);
  return 0;
}
