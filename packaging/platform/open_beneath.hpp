// Opening paths beneath a directory without leaving it (Linux).
#pragma once

#include <sys/types.h>

#include <string>

namespace fabu::packaging::platform {

// Opens `path`, relative and '/'-separated, beneath the directory `root`,
// refusing to resolve through any symlink, magic link (/proc/self/fd/...) or
// `..`: openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS).
// Where the kernel has no openat2 (before Linux 5.6, or a seccomp filter
// that refuses it), the same by hand: one openat(O_NOFOLLOW) per component.
// Either way nothing outside `root` is opened or created, whatever the tree
// beneath it holds. Returns the descriptor, or -1 with errno (ELOOP or EXDEV
// when a symlink or an escape was met).
// `use_openat2` false takes the by-hand walk at once (tests).
int OpenBeneath(int root, const std::string& path, int flags, mode_t mode = 0,
                bool use_openat2 = true);

}  // namespace fabu::packaging::platform
