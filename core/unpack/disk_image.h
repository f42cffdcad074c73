// Files out of a disk image, read in process by an ordinary user: no loop device, no mount, no
// decompressed copy of the image on disk. The image is raw or bzip2-compressed (read through
// ByteSource, which decodes only the parts a read touches); it holds a GPT, an MBR or a bare
// file system; the first ext2/3/4 file system in it is read with libext2fs.
//
// Only the subtrees asked for are copied. Symlinks stay symlinks; one whose target would lead
// above the image's root is refused, as is a path through one. Every error is one line naming
// the image and the cause.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace kbuild {

class ByteSource;

// Where the file system is in the image.
struct ImageFilesystem {
    std::uint64_t offset = 0;  // bytes from the image's start
    std::uint64_t length = 0;  // bytes the partition (or the bare file system) spans
    std::string where;         // "GPT partition 1", "MBR partition 2", "the whole image"
};

// Reads the partition table and finds the first ext2/3/4 file system. Throws kbuild::Error:
// no such file system, a table that fails its checksums, a partition past the disk's end.
ImageFilesystem find_filesystem(ByteSource& image);

struct ImageExtractStats {
    std::int64_t entries = 0;          // files, directories and links written
    std::int64_t bytes = 0;            // bytes of file data written
    std::vector<std::string> matched;  // the paths the patterns matched, image-relative
    std::string where;                 // ImageFilesystem::where
};

// Copies from `image` into `dest` (created if missing) every subtree one of `patterns` names:
// image-relative paths ("usr/lib/modules/*/build") whose components may hold fnmatch globs.
// Each lands at its own path under dest; symlinks met on the way are followed inside the image
// and re-created as they are. A pattern matching nothing is not an error (see `matched`).
ImageExtractStats extract_from_image(const std::filesystem::path& image, const std::filesystem::path& dest,
                                     const std::vector<std::string>& patterns);

}  // namespace kbuild
