// The guard against a crawl that comes back short. A mirror caught mid-sync, a proxy's error
// page, a repository moved: the crawl succeeds with fewer kernels, and a fleet that trusts it
// drops hundreds of configs. So each distro's crawl is compared with the last one that passed,
// kept in the cache (<cache>/crawls/<distro>-<arch>-<query>.json, one per query: distro, arch,
// mirrors and plugin options), and refused when it lost more than a share of its releases, or
// every release of a flavour, a target or a repository that had several.
#pragma once

#include <kbuild/types.hpp>

#include <filesystem>
#include <string>

namespace kbuild {

struct ShrinkPolicy {
    double max_share = 0.25;  // of the last crawl's releases that may vanish
    bool allow = false;       // --allow-shrink: what vanished is only warned about
};

// The groups a release is counted in when looking for one that vanished whole:
// "flavour cloud-amd64" (its release's trailing words: 6.1.0-53-cloud-amd64), "target
// ubuntu-aws", "repository http://host/debian-security" (its first package's URL up to /pool/
// or /Packages/, else two directories above the file).
std::vector<std::string> release_groups(const Release& release);

// Compares `found` with the last crawl of `query` remembered in `dir`. Throws kbuild::Error
// naming what vanished when the crawl shrank past the policy (and remembers nothing); else
// remembers `found` as the last crawl (what vanished, if anything, logged as a warning).
void check_crawl_shrink(const ReleaseList& found, const std::string& distro, const std::string& arch, const Json& query,
                        const std::filesystem::path& dir, const ShrinkPolicy& policy);

}  // namespace kbuild
