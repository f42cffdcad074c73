// Sharding for fleets that already have a scheduler (a Kubernetes Indexed Job, a CI matrix):
// each shard takes a stable slice of the targets, and the shards' indexes merge into one.
// kbuild grows no scheduler of its own.
#pragma once

#include <kbuild/types.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace kbuild {

// Shard `index` of `count`; index counts from 0, as a Kubernetes Indexed Job's
// JOB_COMPLETION_INDEX does.
struct Shard {
    unsigned index = 0;
    unsigned count = 1;
};

// "K/N" with 0 <= K < N; throws kbuild::Error naming the text otherwise.
Shard parse_shard(const std::string& text);

// The shard a target falls in: a hash of its distro and arch_release_id (release, variant, and
// the machine when it is not x86) alone, so a target's shard never depends on what other targets
// there are, and adding kernels moves none.
unsigned shard_of(const std::string& distro, const std::string& release_id, unsigned count);

// Keeps the releases of this shard, in their order.
std::vector<Release> releases_of_shard(const std::vector<Release>& releases, const Shard& shard);

}  // namespace kbuild
