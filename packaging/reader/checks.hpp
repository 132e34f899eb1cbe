// The checks of a package read, each a refusal with its reason
// (checks.cpp lists them in the order of a read). Errors carry no file
// name; package_reader.cpp adds it.
#pragma once

#include <string>
#include <string_view>

#include "packaging/keys.hpp"
#include "packaging/manifest.hpp"
#include "packaging/package.hpp"
#include "packaging/platform/libarchive.hpp"
#include "packaging/reader/disk_sink.hpp"
#include "packaging/reader/sources.hpp"
#include "protocol/error.hpp"

namespace fabu::packaging::reader {

// A kIntegrity error: the package is not what it claims to be.
Error Integrity(std::string message);

// Reads the next outer member's header; `what` says which member we expect.
Result<archive_entry*> NextMember(archive* outer, std::string_view what);

// The first two members as read, not yet checked against a key.
struct Header {
  std::string manifest_json;
  Signature signature{};
};

// Reads manifest.json and manifest.sig, the first two members, in order.
Result<Header> ReadHeaderMembers(archive* outer);

// Checks the signature against `trust`, then parses the manifest it covers.
Result<Manifest> CheckSignature(const Header& h, const TrustStore& trust);

struct SignedHeader {
  Header header;
  Manifest manifest;
};

// Reads manifest.json and manifest.sig, checks the signature by a trusted key
// before anything else is read, then the expiry (at options.now, or now).
Result<SignedHeader> ReadSignedHeader(archive* outer, const TrustStore& trust,
                                      const VerifyOptions& options);

// Reads the payload member's header: the third member, named and sized as
// the manifest says. Returns its name.
Result<std::string> CheckPayloadMember(archive* outer, const Manifest& manifest);

// Walks the inner tar and checks every entry against the manifest, handing
// each to `sink` (nullptr: none) only once it passed.
Result<void> CheckPayloadEntries(archive* inner, const Manifest& manifest, EntrySink* sink);

// The inner tar was compressed as the manifest says (after it was read).
Result<void> CheckCompression(archive* inner, const Manifest& manifest);

// Drains the payload member and checks its size and SHA-256: the digest
// covers every byte, read or not.
Result<void> CheckPayloadDigest(PayloadSource& payload, const Manifest& manifest,
                                std::string_view payload_name);

// No member follows the payload.
Result<void> CheckNothingAfterPayload(archive* outer);

}  // namespace fabu::packaging::reader
