// Archive extraction in process with libarchive: .deb (ar, then data.tar.{xz,zst,gz,bz2} or
// control.tar.*), .rpm (cpio payload, any compression libarchive reads), .tar and .tar.*.
// Entries that would land outside the target (a ".." component, an absolute path, a path
// through a symlink) are refused with one line naming the archive and the entry; symlinks
// inside the tree are kept as symlinks, whatever they point at. Devices, fifos and sockets are
// skipped; directories always keep owner rwx, so later packages can be unpacked into them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace kbuild {

// For a .deb: which inner tarball. Other archives have only data.
enum class DebMember { data, control };

struct ExtractStats {
    std::int64_t entries = 0;  // files, directories and links written
    std::int64_t bytes = 0;    // bytes of file data written
};

// Extracts `archive` into `dest` (created if missing; existing files are replaced, so several
// packages can be unpacked into one root). The format is read from the content, not the name.
// Throws kbuild::Error: "<archive>: <entry>: <why>" or "<archive>: <why>".
ExtractStats extract_archive(const std::filesystem::path& archive, const std::filesystem::path& dest,
                             DebMember member = DebMember::data);

// Threads an xz payload decodes on, at most (default 4, never more than the cores). Each holds
// a 24 MiB block and its output, so a run unpacking several trees at once gives each what its
// share of the cores can use: more threads would only add memory.
void set_unpack_threads(unsigned threads);

}  // namespace kbuild
