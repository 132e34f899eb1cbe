// The API's contract, docs/openapi.yaml, as it was when this binary was
// built (embedded by CMake through cmake/embed_text.cmake; never read from
// disk at run time). Served at GET /api/v1/openapi.yaml without a token: it
// describes the API and holds no data.
#pragma once

#include <string_view>

namespace fabu::coordinator {

// The text of docs/openapi.yaml.
std::string_view OpenApiText();

}  // namespace fabu::coordinator
