#include "targets/shard.h"

#include "kernel/kernel_arch.h"

#include <kbuild/digest.hpp>

#include <algorithm>
#include <map>
#include <tuple>

namespace fs = std::filesystem;

namespace kbuild {

Shard parse_shard(const std::string& text) {
    const auto slash = text.find('/');
    auto number = [&](const std::string& part) -> long {
        if (part.empty() || part.size() > 6 || !std::all_of(part.begin(), part.end(), ::isdigit)) return -1;
        return std::stol(part);
    };
    const long k = slash == std::string::npos ? -1 : number(text.substr(0, slash));
    const long n = slash == std::string::npos ? -1 : number(text.substr(slash + 1));
    if (k < 0 || n < 1 || k >= n) throw Error("--shard " + text + ": expected K/N with 0 <= K < N (K counts from 0)");
    return {static_cast<unsigned>(k), static_cast<unsigned>(n)};
}

unsigned shard_of(const std::string& distro, const std::string& release_id, unsigned count) {
    const std::string digest = sha256_text(distro + "\n" + release_id);
    const unsigned long long value = std::stoull(digest.substr(0, 15), nullptr, 16);
    return static_cast<unsigned>(value % count);
}

std::vector<Release> releases_of_shard(const std::vector<Release>& releases, const Shard& shard) {
    std::vector<Release> kept;
    for (const auto& r : releases)
        if (shard_of(r.distro, arch_release_id(r), shard.count) == shard.index) kept.push_back(r);
    return kept;
}

}  // namespace kbuild
