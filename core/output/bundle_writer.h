// Writes kernel bundles (the format is plugin/bundle.h's): `kbuild bundle`'s output.
#pragma once

#include "plugin/bundle.h"

#include <cstdint>
#include <filesystem>
#include <string>

namespace kbuild {

struct BundleStats {
    std::filesystem::path file;
    std::int64_t entries = 0;
    std::int64_t bytes = 0;   // the .tgz's size
    std::int64_t pruned = 0;  // entries of other architectures left out
};

// Writes `root` (an unpacked tree: usr/src/..., usr/lib/...) as a bundle into out_dir. The
// kernel_dir is where make runs, inside root. The file appears complete or not at all.
BundleStats write_bundle(const std::filesystem::path& root, const std::filesystem::path& kernel_dir,
                         const Release& release, const std::string& checksum, const std::filesystem::path& out_dir);

}  // namespace kbuild
