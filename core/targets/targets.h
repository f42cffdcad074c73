// What picks the kernels of a run: a distro, and either its mirrors (crawl) or package files
// (batch); then --kernel, --latest and --shard choose among the releases found. The verbs and
// the build service both start here.
#pragma once

#include "fetch/trust.h"
#include "targets/crawl_memory.h"
#include "util/error.h"

#include <kbuild/types.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace kbuild {

class Plugin;
class PluginHost;
class PluginInstance;

struct TargetOptions {
    std::string distro;
    std::string arch = "amd64";
    std::vector<std::string> mirrors;
    std::vector<std::string> plugin_options;          // key=value
    std::map<std::string, std::string> option_files;  // key -> the config file that set it
    std::vector<std::string> files;                   // local packages
    std::string from_list;                            // a file of URLs or names, one per line
    std::string kernel_regex;
    int latest = 0;     // keep the N newest releases; 0: all
    std::string shard;  // "K/N": only this shard's releases; "": all
    int jobs = 4;
    // Trust (fetch/trust.h): --keyring replaces the distro's keyrings; --insecure-mirror URL is
    // used without checking signatures; the config file adds per-mirror keyrings and verify = false.
    std::vector<std::string> keyrings;
    std::vector<std::string> insecure_mirrors;
    std::vector<std::pair<std::string, std::string>> mirror_keyrings;  // URL prefix, keyring
    std::vector<std::string> distro_keyrings;                          // the config's keyring for the distro
    bool verify = true;  // false: the config's verify = false for the distro
    // --kernel-config: a source kernel's config, handed to the plugin as its option config= (a
    // file or a URL; base64:DATA is written to a file first, see kernel_config_value).
    std::string kernel_config;
    // A crawl that lost more than this share of the last one's releases is refused, unless
    // allowed (--max-shrink, --allow-shrink; crawl_memory.h).
    ShrinkPolicy shrink;
};

// What a plugin is handed for --kernel-config: base64:DATA written to a file,
// <cache_dir>/configs/<sha256>.config; a file or a URL as it is. Throws UsageError when DATA is
// not base64.
std::string kernel_config_value(const std::string& value, const std::filesystem::path& cache_dir);

// A kernel config kept in the cache by its content: <cache_dir>/configs/<sha256>.config,
// written whole under a temporary name. Throws Error when it cannot be written.
std::filesystem::path save_kernel_config(const std::string& config, const std::filesystem::path& cache_dir);
std::filesystem::path kernel_config_file(const std::filesystem::path& cache_dir, const std::string& sha256);

// Adds a target's trust settings to a policy: its distro's keyrings (the config's, replaced by
// --keyring), mirror keyrings, insecure mirrors, verify = false.
void add_trust(TrustPolicy& policy, const TargetOptions& target);

// Adds the keyrings a plugin's describe names for the distros it serves (ABI 1.6): Debian's and
// Ubuntu's archive keyrings where their packages install them.
void add_plugin_keyrings(TrustPolicy& policy, const Plugin& plugin);

// The trust policy of a run: the plugin's keyrings, then the config file's, then the command line's.
TrustPolicy trust_policy(const Plugin& plugin, const TargetOptions& target);

// The plugin serving a distro; an unknown distro is a UsageError naming the known ones.
const Plugin& plugin_for(const PluginHost& host, const std::string& distro);

// What a plugin's crawl is asked: the target's distro, arch, mirrors and --option pairs, and
// apt's source URIs. A malformed option, or one the plugin's describe does not declare, is a
// UsageError.
CrawlRequest crawl_request(PluginInstance& instance, const TargetOptions& target);

// crawl, or batch when files or a list are given: the one shape everything after uses.
ReleaseList find_releases(PluginInstance& instance, const TargetOptions& target,
                          const std::filesystem::path& cache_dir);

// Keeps the releases --kernel, --latest and --shard select; newest first when --latest is set,
// in the order of `plugin`'s order_releases hook (its distro's version rules), else (no plugin,
// or one older than ABI 1.5) in natural_version_compare's order of the release, then the variant.
void select_releases(std::vector<Release>& releases, const TargetOptions& target, PluginInstance* plugin);

// The host's order of versions when a plugin gives none, knowing no distro's rules: the text
// split into runs of digits and of other characters, digit runs compared as numbers (leading
// zeros ignored), other runs as bytes, a digit run newer than a text run, and a version with
// more runs newer than its prefix ("6.1.10" > "6.1.9" > "6.1"). <0, 0, >0 like strcmp.
int natural_version_compare(const std::string& a, const std::string& b);

}  // namespace kbuild
