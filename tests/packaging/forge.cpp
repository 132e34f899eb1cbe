#include "tests/packaging/forge.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <stdexcept>

#include "packaging/sha256.hpp"
#include "tests/support/temp_dir.hpp"

namespace fabu::testing {
namespace {

la_ssize_t AppendToString(archive*, void* client, const void* buffer, size_t length) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

void Check(int rc, archive* a) {
  if (rc < ARCHIVE_WARN) throw std::runtime_error(archive_error_string(a));
}

}  // namespace

std::string ForgePayload(const std::vector<ForgeEntry>& entries,
                         packaging::Compression compression) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (compression == packaging::Compression::kZstd) {
    archive_write_add_filter_zstd(a);
  } else {
    archive_write_add_filter_gzip(a);
  }
  archive_write_set_bytes_in_last_block(a, 1);
  Check(archive_write_open2(a, &out, nullptr, AppendToString, nullptr, nullptr), a);
  for (const auto& e : entries) {
    archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, e.path.c_str());
    archive_entry_set_perm(ae, e.mode);
    archive_entry_set_mtime(ae, 1700000000, 0);
    switch (e.type) {
      case ForgeType::kFile:
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_size(
            ae, e.header_size >= 0 ? e.header_size : static_cast<la_int64_t>(e.data.size()));
        break;
      case ForgeType::kDir:
        archive_entry_set_filetype(ae, AE_IFDIR);
        break;
      case ForgeType::kSymlink:
        archive_entry_set_filetype(ae, AE_IFLNK);
        archive_entry_set_symlink(ae, e.target.c_str());
        break;
      case ForgeType::kHardlink:
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_hardlink(ae, e.target.c_str());
        archive_entry_set_size(ae, 0);
        break;
      case ForgeType::kCharDevice:
        archive_entry_set_filetype(ae, AE_IFCHR);
        archive_entry_set_rdev(ae, 0x0103);  // like /dev/null
        break;
      case ForgeType::kFifo:
        archive_entry_set_filetype(ae, AE_IFIFO);
        break;
    }
    Check(archive_write_header(a, ae), a);
    if (e.type == ForgeType::kFile && !e.data.empty()) {
      archive_write_data(a, e.data.data(), e.data.size());
    }
    archive_entry_free(ae);
  }
  Check(archive_write_close(a), a);
  archive_write_free(a);
  return out;
}

packaging::Manifest ForgeManifest(const std::vector<ForgeEntry>& entries,
                                  const std::string& payload, const packaging::SigningKey& key,
                                  packaging::Compression compression) {
  packaging::Manifest m;
  m.name = "forged";
  m.version = protocol::Version{1, 0, 0, 1};
  m.created = "2026-11-25T21:00:00Z";
  m.key_id = key.public_key().key_id();
  m.payload.compression = compression;
  m.payload.file =
      compression == packaging::Compression::kZstd ? "payload.tar.zst" : "payload.tar.gz";
  m.payload.size = payload.size();
  m.payload.sha256 = packaging::Sha256::OfString(payload);
  for (const auto& e : entries) {
    packaging::ManifestEntry me;
    me.path = e.path;
    me.mode = e.mode & 0777;
    switch (e.type) {
      case ForgeType::kFile:
        me.type = packaging::EntryType::kFile;
        me.size = e.data.size();
        me.sha256 = packaging::Sha256::OfString(e.data);
        break;
      case ForgeType::kDir:
        me.type = packaging::EntryType::kDir;
        break;
      case ForgeType::kSymlink:
        me.type = packaging::EntryType::kSymlink;
        me.target = e.target;
        me.mode = 0777;
        break;
      default:
        continue;  // the manifest cannot describe these; the payload holds them anyway
    }
    m.files.push_back(me);
  }
  return m;
}

void ForgeTar(const std::filesystem::path& path,
              const std::vector<std::pair<std::string, std::string>>& members) {
  archive* a = archive_write_new();
  archive_write_set_format_ustar(a);
  Check(archive_write_open_filename(a, path.c_str()), a);
  for (const auto& [name, data] : members) {
    archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, name.c_str());
    archive_entry_set_filetype(ae, AE_IFREG);
    archive_entry_set_perm(ae, 0644);
    archive_entry_set_size(ae, static_cast<la_int64_t>(data.size()));
    Check(archive_write_header(a, ae), a);
    archive_write_data(a, data.data(), data.size());
    archive_entry_free(ae);
  }
  Check(archive_write_close(a), a);
  archive_write_free(a);
}

std::vector<HostileSymlinkTree> HostileSymlinkTrees() {
  const ForgeEntry ok{"ok.txt", ForgeType::kFile, 0644, "fine", "", -1};
  auto dir = [](std::string path) { return ForgeEntry{path, ForgeType::kDir, 0755, "", "", -1}; };
  auto link = [](std::string path, std::string target) {
    return ForgeEntry{path, ForgeType::kSymlink, 0777, "", target, -1};
  };
  auto file = [](std::string path) {
    return ForgeEntry{path, ForgeType::kFile, 0644, "root:x:0:0::/root:/bin/sh\n", "", -1};
  };
  return {
      // sub/up is the root; esc climbs one above it.
      {"chain of 2 links",
       {ok, dir("sub"), link("sub/up", ".."), link("esc", "sub/up/../etc/passwd")},
       "symlink \"esc\" -> \"sub/up/../etc/passwd\" leaves the package tree"},
      // a/hop -> a/b/up2 -> the root; esc climbs one above it.
      {"chain of 3 links",
       {ok, dir("a"), dir("a/b"), link("a/b/up2", "../.."), link("a/hop", "b/up2"),
        link("esc", "a/hop/../etc/passwd")},
       "symlink \"esc\" -> \"a/hop/../etc/passwd\" leaves the package tree"},
      // The parent of the tree through a link to a directory, then a file
      // written through that link.
      {"link to a directory, a file written through it",
       {ok, dir("sub"), link("sub/up", ".."), link("above", "sub/up/.."), file("above/passwd")},
       "symlink \"above\" -> \"sub/up/..\" leaves the package tree"},
      // The same, the escaping link last in the tree's order.
      {"the escape behind a link to a directory inside",
       {ok, dir("d"), link("d/root", ".."), link("z", "d/root/../outside")},
       "symlink \"z\" -> \"d/root/../outside\" leaves the package tree"},
      {"link loop",
       {ok, link("l1", "l2"), link("l2", "l1")},
       "symlink \"l1\" -> \"l2\" does not resolve"},
      {"link looping through itself",
       {ok, link("self", "self/x")},
       "symlink \"self\" -> \"self/x\" does not resolve"},
  };
}

std::string SignatureBytes(const packaging::SigningKey& key, const std::string& message) {
  auto sig = key.Sign(message);
  if (!sig) throw std::runtime_error(sig.error().message());
  return std::string(reinterpret_cast<const char*>(sig->data()), sig->size());
}

void ForgePackage(const std::filesystem::path& path, const std::string& manifest_json,
                  const std::string& payload, const packaging::SigningKey& key,
                  const std::string& payload_name) {
  ForgeTar(path, {{"manifest.json", manifest_json},
                  {"manifest.sig", SignatureBytes(key, manifest_json)},
                  {payload_name, payload}});
}

std::jthread WriteGrowing(const std::filesystem::path& from, const std::filesystem::path& to,
                          packaging::GrowingFile& growing, std::size_t chunk,
                          std::size_t stop_after, std::optional<Error> abandon) {
  WriteFile(to, "");
  return std::jthread([=, &growing] {
    const std::string bytes = ReadFile(from);
    std::ofstream out(to, std::ios::binary);
    std::size_t written = 0;
    while (written < bytes.size() && written < stop_after) {
      const std::size_t n = std::min({chunk, bytes.size() - written, stop_after - written});
      out.write(bytes.data() + written, static_cast<std::streamsize>(n));
      out.flush();
      written += n;
      growing.Grew(written);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (abandon) {
      growing.Abandon(*abandon);
    } else {
      growing.Complete();
    }
  });
}

}  // namespace fabu::testing
