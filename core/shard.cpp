#include "shard.h"

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
    if (k < 0 || n < 1 || k >= n)
        throw Error("--shard " + text + ": expected K/N with 0 <= K < N (K counts from 0)");
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
        if (shard_of(r.distro, release_id(r), shard.count) == shard.index) kept.push_back(r);
    return kept;
}

namespace {

// What two shards must agree on for one target.
bool same_outcome(const TargetRecord& a, const TargetRecord& b) {
    if (a.status != b.status || a.inputs != b.inputs || a.artifacts.size() != b.artifacts.size()) return false;
    for (size_t i = 0; i < a.artifacts.size(); ++i)
        if (a.artifacts[i].path != b.artifacts[i].path || a.artifacts[i].sha256 != b.artifacts[i].sha256) return false;
    return true;
}

std::string describe(const TargetRecord& r) {
    std::string text = r.distro + " " + r.arch + " " + r.kernelrelease;
    if (!r.variant.empty()) text += "~" + r.variant;
    return text + " " + r.module + " (" + r.status +
           (r.artifacts.empty() ? "" : ", " + r.artifacts.front().sha256.substr(0, 12)) + ")";
}

}  // namespace

std::vector<TargetRecord> merge_indexes(const std::vector<fs::path>& files) {
    using Key = std::tuple<std::string, std::string, std::string, std::string, std::string>;
    std::vector<TargetRecord> merged;
    std::map<Key, std::pair<size_t, fs::path>> seen;  // where each target was first met
    for (const auto& file : files) {
        for (auto& record : read_index(file)) {
            const Key key = target_key(record);
            const auto it = seen.find(key);
            if (it == seen.end()) {
                seen.emplace(key, std::make_pair(merged.size(), file));
                merged.push_back(std::move(record));
                continue;
            }
            const TargetRecord& first = merged[it->second.first];
            if (!same_outcome(first, record))
                throw Error(file.string() + ": " + describe(record) + " conflicts with " + it->second.second.string() +
                            ": " + describe(first));
        }
    }
    std::sort(merged.begin(), merged.end(),
              [](const TargetRecord& a, const TargetRecord& b) { return target_key(a) < target_key(b); });
    return merged;
}

}  // namespace kbuild
