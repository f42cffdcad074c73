#include "output/artifacts.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace fs = std::filesystem;

namespace kbuild {

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
    return text + " " + r.module + " (" + to_string(r.status) +
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
