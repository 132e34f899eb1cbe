# Writes OUT, the version and the commit that the binaries print with
# --version (protocol/build_info.hpp). Run at every build by the
# fabu_build_info_file target; OUT is rewritten only when its text changes,
# so an unchanged commit compiles nothing. Outside a git checkout the commit
# is "unknown"; uncommitted changes to tracked files add "-dirty".
# Usage: cmake -DSOURCE_DIR=... -DOUT=... -DVERSION=... -P build_info.cmake
set(commit "unknown")
find_program(GIT git)
if(GIT AND EXISTS "${SOURCE_DIR}/.git")
  execute_process(COMMAND "${GIT}" -C "${SOURCE_DIR}" rev-parse --short=12 HEAD
                  OUTPUT_VARIABLE head OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE head_rc ERROR_QUIET)
  if(head_rc EQUAL 0 AND head)
    set(commit "${head}")
    execute_process(COMMAND "${GIT}" -C "${SOURCE_DIR}" status --porcelain --untracked-files=no
                    OUTPUT_VARIABLE changes OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(changes)
      string(APPEND commit "-dirty")
    endif()
  endif()
endif()
set(text "// Written by cmake/build_info.cmake; do not edit.
#include \"protocol/build_info.hpp\"

namespace fabu {
std::string_view BuildVersion() { return \"${VERSION}\"; }
std::string_view BuildCommit() { return \"${commit}\"; }
}  // namespace fabu
")
set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
