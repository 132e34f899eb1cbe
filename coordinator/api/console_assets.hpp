// The web console's files (coordinator/console/assets), built into the
// binary by cmake/embed_assets.cmake: no files to deploy beside it.
#pragma once

#include <span>
#include <string_view>

namespace fabu::coordinator {

struct ConsoleAsset {
  std::string_view name;     // the file's name: "index.html", "app.js"
  std::string_view content;  // its bytes
};

// Every file, by name in byte order.
std::span<const ConsoleAsset> ConsoleAssets();

}  // namespace fabu::coordinator
