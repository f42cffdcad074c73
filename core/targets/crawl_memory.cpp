#include "targets/crawl_memory.h"

#include "util/error.h"
#include "util/strings.h"

#include <kbuild/digest.hpp>

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <set>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

bool starts_with_letter(const std::string& word) {
    return !word.empty() && ((word[0] >= 'a' && word[0] <= 'z') || (word[0] >= 'A' && word[0] <= 'Z'));
}

std::string flavour_of(const std::string& release) {
    // The trailing '-'-words that start with a letter ("cloud-amd64" of 6.1.0-53-cloud-amd64,
    // "generic" of 5.15.0-91-generic); else what follows the last '.' ("x86_64" of an rpm's
    // 5.14.0-284.11.1.el9_2.x86_64).
    std::vector<std::string> words;
    for (size_t start = 0;;) {
        const size_t dash = release.find('-', start);
        words.push_back(release.substr(start, dash == std::string::npos ? dash : dash - start));
        if (dash == std::string::npos) break;
        start = dash + 1;
    }
    std::string flavour;
    for (size_t i = words.size(); i-- > 1 && starts_with_letter(words[i]);)
        flavour = words[i] + (flavour.empty() ? "" : "-" + flavour);
    if (!flavour.empty()) return flavour;
    const size_t dot = release.rfind('.');
    return dot == std::string::npos ? "" : release.substr(dot + 1);
}

std::string repository_of(const std::string& url) {
    for (const char* packages : {"/pool/", "/Packages/"})  // apt's pool, an rpm repository's
        if (const size_t at = url.find(packages); at != std::string::npos) return url.substr(0, at);
    std::string dir = url.substr(0, url.rfind('/'));
    const size_t up = dir.rfind('/');
    return up == std::string::npos || up < url.find("://") + 3 ? dir : dir.substr(0, up);
}

struct Remembered {
    std::string at;
    std::map<std::string, std::vector<std::string>> releases;  // release id -> its groups
};

std::optional<Remembered> load(const fs::path& file) {
    std::ifstream in(file);
    if (!in) return std::nullopt;
    const Json j = Json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("releases") || !j["releases"].is_object()) {
        spdlog::warn("{}: not a remembered crawl; comparing with nothing", file.string());
        return std::nullopt;
    }
    Remembered r;
    r.at = j.value("at", "");
    for (const auto& [id, groups] : j["releases"].items())
        if (groups.is_array()) r.releases[id] = groups.get<std::vector<std::string>>();
    return r;
}

void save(const fs::path& file, const Json& query, const std::map<std::string, std::vector<std::string>>& now) {
    fs::create_directories(file.parent_path());
    const Json j = {{"query", query}, {"at", utc_now()}, {"releases", now}};
    const fs::path tmp = file.string() + ".tmp-" + std::to_string(::getpid());
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << j.dump(1) << '\n';
        if (!out) throw Error(tmp.string() + ": cannot write");
    }
    fs::rename(tmp, file);
}

std::string some_of(const std::vector<std::string>& names, size_t most = 5) {
    std::string text;
    for (size_t i = 0; i < names.size() && i < most; ++i) text += (i ? ", " : "") + names[i];
    if (names.size() > most) text += ", ... (" + std::to_string(names.size()) + " in all)";
    return text;
}

}  // namespace

std::vector<std::string> release_groups(const Release& release) {
    std::vector<std::string> groups;
    if (const std::string flavour = flavour_of(release.release); !flavour.empty())
        groups.push_back("flavour " + flavour);
    if (!release.target.empty()) groups.push_back("target " + release.target);
    if (!release.packages.empty() && !release.packages.front().url.empty())
        groups.push_back("repository " + repository_of(release.packages.front().url));
    return groups;
}

void check_crawl_shrink(const ReleaseList& found, const std::string& distro, const std::string& arch, const Json& query,
                        const fs::path& dir, const ShrinkPolicy& policy) {
    std::string name = distro + "-" + arch + "-" + sha256_text(query.dump()).substr(0, 16) + ".json";
    for (char& c : name)
        if (c == '/') c = '_';
    const fs::path file = dir / name;
    std::map<std::string, std::vector<std::string>> now;
    for (const auto& release : found.releases) now[release_id(release)] = release_groups(release);
    const auto last = load(file);
    std::vector<std::string> problems, vanished;
    if (last) {
        for (const auto& [id, groups] : last->releases)
            if (!now.count(id)) vanished.push_back(id);
        const size_t before = last->releases.size();
        const double share = before ? static_cast<double>(vanished.size()) / static_cast<double>(before) : 0;
        if (!vanished.empty() && (now.empty() || (before >= 4 && share > policy.max_share)))
            problems.push_back(std::to_string(vanished.size()) + " of the " + std::to_string(before) +
                               " releases of the last crawl vanished (" +
                               std::to_string(static_cast<int>(std::lround(share * 100))) + "%, more than " +
                               std::to_string(static_cast<int>(std::lround(policy.max_share * 100))) +
                               "%): " + some_of(vanished));
        // A group that had several releases and has none now.
        std::map<std::string, int> had, has;
        for (const auto& [id, groups] : last->releases)
            for (const auto& g : groups) ++had[g];
        for (const auto& [id, groups] : now)
            for (const auto& g : groups) ++has[g];
        for (const auto& [group, count] : had)
            if (count >= 2 && !has.count(group))
                problems.push_back("the " + group + " vanished (" + std::to_string(count) + " releases last time)");
    }
    const std::string what = distro + " " + arch + ": the crawl found " + std::to_string(now.size()) + " releases, " +
                             (last ? std::to_string(last->releases.size()) : "0") + " the last time (" +
                             (last ? last->at : "") + ")";
    if (!problems.empty()) {
        std::string why;
        for (const auto& p : problems) why += "; " + p;
        if (!policy.allow)
            throw Error(what + why + " (a mirror mid-sync or moved? --allow-shrink accepts it; " + file.string() +
                        " is the last crawl)");
        spdlog::warn("{}{} (accepted: --allow-shrink)", what, why);
    } else if (!vanished.empty()) {
        spdlog::info("{} ({} vanished: {})", what, vanished.size(), some_of(vanished));
    }
    save(file, query, now);
}

}  // namespace kbuild
