#include "targets/targets.h"

#include "fetch/apt_sources.h"
#include "kernel/kernel_arch.h"
#include "plugin/plugin_host.h"
#include "targets/shard.h"
#include "util/strings.h"
#include "util/table.h"

#include <kbuild/digest.hpp>

#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <fstream>
#include <optional>
#include <regex>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

Options parse_plugin_options(const std::vector<std::string>& pairs) {
    Options options;
    for (const auto& pair : pairs) {
        const size_t eq = pair.find('=');
        if (eq == std::string::npos || eq == 0) throw UsageError("--option " + pair + ": expected KEY=VALUE");
        options[pair.substr(0, eq)] = pair.substr(eq + 1);
    }
    return options;
}

// The --option pairs (and the config file's) a request carries. A key the plugin's describe
// does not declare would be ignored, so a typo would silently widen the work: refused, naming
// the keys it does declare. A plugin without describe (an optional hook; ABI 1.0 has none)
// gets them all, as before.
Options plugin_options(PluginInstance& instance, const TargetOptions& target) {
    Options options = parse_plugin_options(target.plugin_options);
    if (!target.kernel_config.empty()) {
        if (options.count("config")) throw UsageError("give --kernel-config or --option config=, not both");
        options["config"] = kernel_config_value(target.kernel_config, instance.cache_dir());
    }
    const std::optional<Description> description = instance.describe();
    if (!description) return options;
    std::vector<std::string> declared;
    for (const auto& option : description->options) declared.push_back(option.name);
    for (const auto& [key, value] : options) {
        if (std::find(declared.begin(), declared.end(), key) != declared.end()) continue;
        const auto file = target.option_files.find(key);
        throw UsageError(target.distro + ": unknown option '" + key + "'" +
                         (file == target.option_files.end() ? "" : " in " + file->second) + " (" +
                         (declared.empty() ? std::string("it takes none") : "options: " + join(declared, ", ")) + ")");
    }
    return options;
}

// A package file named on the command line must be one: a directory or a device is not taken
// for a missing file.
void check_package_file(const std::string& file) {
    std::error_code ec;
    const fs::file_status status = fs::status(file, ec);
    if (fs::is_regular_file(status)) return;
    if (fs::is_directory(status)) throw UsageError(file + ": is a directory, not a package file");
    if (fs::exists(status)) throw UsageError(file + ": not a regular file");
    throw UsageError(file + ": no such file");
}

std::vector<std::string> read_list(const std::string& path) {
    // A directory opens as a stream that reads nothing: it would pass for an empty list.
    if (fs::is_directory(path)) throw UsageError(path + ": is a directory, not a list of packages");
    std::ifstream in(path);
    if (!in) throw UsageError(path + ": cannot read the list");
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
        line.erase(0, line.find_first_not_of(" \t\r"));
        line.erase(line.find_last_not_of(" \t\r") + 1);
        if (!line.empty() && line.front() != '#') lines.push_back(line);
    }
    return lines;
}

}  // namespace

std::string kernel_config_value(const std::string& value, const fs::path& cache_dir) {
    const std::string prefix = "base64:";
    if (value.compare(0, prefix.size(), prefix) != 0) return value;
    const auto data = decode_base64(std::string_view(value).substr(prefix.size()));
    if (!data || data->empty()) throw UsageError("--kernel-config base64:...: not base64 (RFC 4648, padded)");
    return save_kernel_config(*data, cache_dir).string();
}

fs::path kernel_config_file(const fs::path& cache_dir, const std::string& sha256) {
    return cache_dir / "configs" / (sha256 + ".config");
}

fs::path save_kernel_config(const std::string& config, const fs::path& cache_dir) {
    const fs::path file = kernel_config_file(cache_dir, sha256_text(config));
    if (fs::exists(file)) return file;
    fs::create_directories(file.parent_path());
    // Unique per writer (threads of one service too), renamed whole: never seen half-written.
    static std::atomic<unsigned> serial{0};
    const fs::path tmp = file.string() + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(++serial);
    {
        std::ofstream out(tmp, std::ios::binary);
        out << config;
        out.close();
        if (!out) {
            std::error_code ec;
            fs::remove(tmp, ec);
            throw Error(tmp.string() + ": cannot write the kernel config");
        }
    }
    fs::rename(tmp, file);
    return file;
}

void add_trust(TrustPolicy& policy, const TargetOptions& target) {
    const auto& keyrings = !target.keyrings.empty() ? target.keyrings : target.distro_keyrings;
    if (!keyrings.empty()) policy.distro_keyrings[target.distro] = {keyrings.begin(), keyrings.end()};
    for (const auto& [prefix, keyring] : target.mirror_keyrings) policy.mirror_keyrings.emplace_back(prefix, keyring);
    policy.insecure_mirrors.insert(policy.insecure_mirrors.end(), target.insecure_mirrors.begin(),
                                   target.insecure_mirrors.end());
    if (!target.verify) policy.insecure_distros.insert(target.distro);
}

void add_plugin_keyrings(TrustPolicy& policy, const Plugin& plugin) {
    const std::optional<Description> description = description_of(plugin);
    if (!description) return;
    for (const auto& [distro, keyrings] : description->keyrings)
        if (plugin.serves(distro)) policy.distro_keyrings[distro] = {keyrings.begin(), keyrings.end()};
}

TrustPolicy trust_policy(const Plugin& plugin, const TargetOptions& target) {
    TrustPolicy policy;
    add_plugin_keyrings(policy, plugin);
    add_trust(policy, target);
    return policy;
}

const Plugin& plugin_for(const PluginHost& host, const std::string& distro) {
    if (const Plugin* plugin = host.find(distro)) return *plugin;
    const auto known = host.known_distros();
    throw UsageError(
        "unknown distro '" + distro + "' (" +
        (known.empty() ? std::string("no plugins loaded; see kbuild plugins") : "known: " + join(known, ", ")) + ")");
}

// Keeps the releases --kernel, --latest and --shard select; newest first when --latest is set.
int natural_version_compare(const std::string& a, const std::string& b) {
    size_t i = 0, j = 0;
    const auto digit = [](char c) { return c >= '0' && c <= '9'; };
    while (i < a.size() && j < b.size()) {
        const bool da = digit(a[i]), db = digit(b[j]);
        size_t ei = i, ej = j;
        while (ei < a.size() && digit(a[ei]) == da) ++ei;
        while (ej < b.size() && digit(b[ej]) == db) ++ej;
        if (da && db) {
            // Numbers: leading zeros dropped, then the longer is larger, then digit by digit.
            size_t si = i, sj = j;
            while (si + 1 < ei && a[si] == '0') ++si;
            while (sj + 1 < ej && b[sj] == '0') ++sj;
            if (ei - si != ej - sj) return ei - si < ej - sj ? -1 : 1;
            if (const int c = a.compare(si, ei - si, b, sj, ej - sj)) return c < 0 ? -1 : 1;
        } else if (da != db) {
            return da ? 1 : -1;  // a number is newer than text in its place ("2" > "rc")
        } else if (const int c = a.compare(i, ei - i, b, j, ej - j)) {
            return c < 0 ? -1 : 1;
        }
        i = ei;
        j = ej;
    }
    if (i < a.size()) return 1;  // more parts: newer ("6.1.1" > "6.1")
    if (j < b.size()) return -1;
    return 0;
}

void select_releases(std::vector<Release>& releases, const TargetOptions& target, PluginInstance* plugin) {
    if (!target.kernel_regex.empty()) {
        std::regex pattern;
        try {
            pattern = std::regex(target.kernel_regex, std::regex::extended);
        } catch (const std::regex_error& e) {
            throw UsageError("--kernel " + target.kernel_regex + ": " + e.what());
        }
        releases.erase(std::remove_if(releases.begin(), releases.end(),
                                      [&](const Release& r) { return !std::regex_search(r.release, pattern); }),
                       releases.end());
    }
    if (target.latest > 0) {
        // Newest first by the plugin's version rules (ABI 1.5), else by a natural version order
        // of the release, then the variant.
        std::optional<std::vector<size_t>> order;
        if (plugin) order = plugin->order_releases(target.distro, releases);
        if (order) {
            std::vector<Release> ordered;
            ordered.reserve(releases.size());
            for (const size_t i : *order) ordered.push_back(std::move(releases[i]));
            releases = std::move(ordered);
        } else {
            std::stable_sort(releases.begin(), releases.end(), [](const Release& a, const Release& b) {
                if (const int c = natural_version_compare(a.release, b.release)) return c > 0;
                return natural_version_compare(a.variant, b.variant) > 0;
            });
        }
        if (releases.size() > static_cast<size_t>(target.latest)) releases.resize(target.latest);
    }
    // Last: N workers split exactly the releases one run would take.
    if (!target.shard.empty()) {
        try {
            releases = releases_of_shard(releases, parse_shard(target.shard));
        } catch (const Error& e) {
            throw UsageError(e.what());
        }
    }
}

CrawlRequest crawl_request(PluginInstance& instance, const TargetOptions& target) {
    CrawlRequest request;
    request.distro = target.distro;
    request.arch = target.arch;
    request.mirrors = target.mirrors;
    request.options = plugin_options(instance, target);
    request.apt_mirrors = apt_mirror_uris(read_apt_sources());
    request.host_arch = debian_arch(host_kernel_arch());
    return request;
}

// crawl, or batch when files or a list are given: the one shape everything after uses.
ReleaseList find_releases(PluginInstance& instance, const TargetOptions& target, const fs::path& cache_dir) {
    if (!target.files.empty() || !target.from_list.empty()) {
        BatchRequest request;
        request.distro = target.distro;
        request.arch = target.arch;
        request.host_arch = debian_arch(host_kernel_arch());
        request.options = plugin_options(instance, target);
        request.files = target.files;
        if (!target.from_list.empty()) {
            if (!target.files.empty()) throw UsageError("give files or --from-list, not both");
            request.files = read_list(target.from_list);
            request.names_only = true;
        } else {
            for (auto& file : request.files) {
                check_package_file(file);
                file = fs::absolute(file).string();
            }
        }
        return instance.batch_packages(request);
    }
    if (!instance.can_crawl())
        throw UsageError("the " + instance.plugin().name() + " plugin cannot crawl: give package files or --from-list");
    const CrawlRequest request = crawl_request(instance, target);
    ReleaseList found = instance.crawl(request);
    // A crawl with errors (a suite that failed to load, a release refused for its signature)
    // is reported as incomplete already, and neither compared nor remembered: the guard is
    // for a crawl that comes back short without a word.
    if (found.errors.empty())
        check_crawl_shrink(found, request.distro, request.arch, Json(request), cache_dir / "crawls", target.shrink);
    return found;
}

}  // namespace kbuild
