#include "coordinator/cmdb/outbound.hpp"

namespace fabu::coordinator {

Result<platform::HttpResponse> PostOutbound(platform::HttpRequest request,
                                            const std::string& ca_file) {
  platform::HttpClientOptions options;
  options.ca_file = ca_file;
  options.allow_plain_http = true;
  options.proxy_from_environment = true;
  options.connect_timeout = std::chrono::seconds(10);
  auto client = platform::HttpClient::Create(std::move(options));
  if (!client) return std::unexpected(client.error());
  request.method = "POST";
  request.max_response_bytes = std::size_t{1} << 20;
  return client->Send(request);
}

}  // namespace fabu::coordinator
