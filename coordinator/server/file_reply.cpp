// A Response::File written by HttpServer (http_server.hpp): the file opened
// and read in chunks on the pool, each chunk written under the I/O timeout,
// from the first byte a "Range: bytes=N-" asks for (206 with Content-Range,
// 416 past the end).
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <stdio.h>

#include <algorithm>
#include <boost/asio/redirect_error.hpp>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <string>

#include "coordinator/common/json_input.hpp"
#include "coordinator/server/error_status.hpp"
#include "coordinator/server/server_internal.hpp"

namespace fabu::coordinator {
namespace {

// Streamed file responses read the file in chunks of this size.
constexpr std::size_t kFileChunk = 256 * 1024;

// The first byte a "Range: bytes=N-" header asks for; nullopt when there is
// no Range header or it has another form (then the whole file is sent, as
// RFC 9110 allows).
std::optional<std::uint64_t> RangeStart(const std::map<std::string, std::string>& headers) {
  auto it = headers.find("range");
  if (it == headers.end()) return std::nullopt;
  std::string_view range = it->second;
  constexpr std::string_view kPrefix = "bytes=";
  if (range.substr(0, kPrefix.size()) != kPrefix || range.empty() || range.back() != '-') {
    return std::nullopt;
  }
  range = range.substr(kPrefix.size(), range.size() - kPrefix.size() - 1);
  std::uint64_t start = 0;
  auto [end, ec] = std::from_chars(range.data(), range.data() + range.size(), start);
  if (ec != std::errc() || end != range.data() + range.size() || range.empty()) {
    return std::nullopt;
  }
  return start;
}

// Owns a FILE* opened for reading.
struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using FileHandle = std::unique_ptr<std::FILE, FileCloser>;

}  // namespace

net::awaitable<bool> HttpServer::Impl::WriteFile(Stream& stream, const RequestContext& ctx,
                                                 unsigned version, bool keep_alive,
                                                 Response& response) {
  const FileReply& reply = *response.file;
  struct Opened {
    FileHandle file;
    std::uint64_t size = 0;
  };
  const Lane lane = LaneOf(ctx);
  auto opened = co_await OnPool(
      [&reply]() -> Result<Opened> {
        FileHandle file(std::fopen(reply.path.c_str(), "rb"));
        std::error_code ec;
        const auto size = std::filesystem::file_size(reply.path, ec);
        if (!file || ec) {
          return Fail(ErrorCode::kNotFound, fmt::format("cannot open {}", reply.path.string()));
        }
        return Opened{std::move(file), size};
      },
      lane);
  beast::error_code ec;
  auto write_json = [&](int status, const nlohmann::json& body,
                        std::optional<std::string> content_range) -> net::awaitable<bool> {
    HttpResponse error_response{static_cast<http::status>(status), version};
    error_response.set(http::field::server, "fabu-coordinator");
    error_response.set(http::field::content_type, "application/json");
    error_response.set("X-Request-Id", ctx.request_id);
    if (content_range) error_response.set(http::field::content_range, *content_range);
    error_response.body() = DumpJson(body) + "\n";
    error_response.keep_alive(keep_alive);
    error_response.prepare_payload();
    stream.expires_after(settings_.io_timeout);
    co_await http::async_write(stream, error_response, net::redirect_error(net::use_awaitable, ec));
    co_return !ec;
  };
  if (!opened) {
    spdlog::error("{}: {}", ctx.request_id, opened.error().message());
    response.status = 500;
    co_return co_await write_json(500, ErrorBody(Error(ErrorCode::kIo, "the file is unreadable")),
                                  std::nullopt);
  }
  const std::uint64_t size = opened->size;
  std::uint64_t offset = 0;
  const auto range = RangeStart(ctx.headers);
  if (range) {
    if (*range >= size && !(size == 0 && *range == 0)) {
      response.status = 416;
      co_return co_await write_json(
          416,
          ErrorBody(Error(
              ErrorCode::kInvalidArgument,
              fmt::format("range starts at byte {} but the file has {} bytes", *range, size))),
          fmt::format("bytes */{}", size));
    }
    offset = *range;
  }
  const bool partial = range.has_value() && offset > 0;
  response.status = partial ? 206 : 200;

  http::response<http::buffer_body> out{partial ? http::status::partial_content : http::status::ok,
                                        version};
  out.set(http::field::server, "fabu-coordinator");
  out.set(http::field::content_type, reply.content_type);
  out.set(http::field::accept_ranges, "bytes");
  out.set("X-Request-Id", ctx.request_id);
  if (!reply.etag.empty()) out.set(http::field::etag, reply.etag);
  if (partial)
    out.set(http::field::content_range, fmt::format("bytes {}-{}/{}", offset, size - 1, size));
  out.content_length(size - offset);
  out.keep_alive(keep_alive);
  out.body().data = nullptr;
  out.body().more = true;
  http::response_serializer<http::buffer_body> serializer{out};
  stream.expires_after(settings_.io_timeout);
  co_await http::async_write_header(stream, serializer,
                                    net::redirect_error(net::use_awaitable, ec));
  if (ec) co_return false;

  std::FILE* file = opened->file.get();
  if (offset > 0 && fseeko(file, static_cast<off_t>(offset), SEEK_SET) != 0) co_return false;
  std::vector<char> chunk(kFileChunk);
  std::uint64_t remaining = size - offset;
  while (remaining > 0) {
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(remaining, chunk.size()));
    const std::size_t got =
        co_await OnPool([&] { return std::fread(chunk.data(), 1, want, file); }, lane);
    if (got == 0) {
      spdlog::error("{}: {} ended early ({} bytes short)", ctx.request_id, reply.path.string(),
                    remaining);
      co_return false;
    }
    remaining -= got;
    if (settings_.load != nullptr) {
      settings_.load->package_bytes.fetch_add(got, std::memory_order_relaxed);
    }
    out.body().data = chunk.data();
    out.body().size = got;
    out.body().more = remaining > 0;
    // Per chunk, so the timeout bounds a stalled reader, not the file's size.
    stream.expires_after(settings_.io_timeout);
    co_await http::async_write(stream, serializer, net::redirect_error(net::use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    if (ec) co_return false;
  }
  if (!serializer.is_done()) {
    out.body().data = nullptr;
    out.body().size = 0;
    out.body().more = false;
    co_await http::async_write(stream, serializer, net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return false;
  }
  co_return true;
}

}  // namespace fabu::coordinator
