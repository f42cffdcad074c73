// The verbs behind the command line. cli.cpp parses flags into these options; each function
// prints data on stdout, logs on stderr, and returns the exit code.
#pragma once

#include "trust.h"

#include <kbuild/types.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kbuild {

class Builder;
class Docker;
class ModuleSigner;
class PluginInstance;

// Exit codes: 1 the work failed (some of it), 2 the command line or config is wrong.
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// A mistake in the command line or the config rather than a failure of the work: exit 2.
struct UsageError : Error {
    using Error::Error;
};

// Runs a verb: an error it throws is logged as one line and becomes the exit code (a
// UsageError 2, any other 1).
int run_guarded(const std::function<int()>& verb);

// --builder: auto takes Docker when its daemon answers and has builder images, else local,
// and says which and why. `docker` receives the client when one is made (kept if set).
std::unique_ptr<Builder> make_builder(const std::string& wanted, std::unique_ptr<Docker>& docker,
                                      const std::string& family);

// Flags every verb shares.
struct GlobalOptions {
    std::vector<std::string> plugin_dirs;
    std::vector<std::string> builder_dirs;  // builder image definitions; empty: the default
    std::string cache_dir;  // empty: $XDG_CACHE_HOME/kbuild, /var/cache/kbuild as root
    bool verbose = false;
    bool quiet = false;
};

// What picks the kernels: a distro, and either its mirrors (crawl) or files (batch).
struct TargetOptions {
    std::string distro;
    std::string arch = "amd64";
    std::vector<std::string> mirrors;
    std::vector<std::string> plugin_options;  // key=value
    std::map<std::string, std::string> option_files;  // key -> the config file that set it
    std::vector<std::string> files;           // local packages
    std::string from_list;                    // a file of URLs or names, one per line
    std::string kernel_regex;
    int latest = 0;                            // keep the N newest releases; 0: all
    std::string shard;                         // "K/N": only this shard's releases; "": all
    int jobs = 4;
    // Trust (trust.h): --keyring replaces the distro's keyrings; --insecure-mirror URL is used
    // without checking signatures; the config file adds per-mirror keyrings and verify = false.
    std::vector<std::string> keyrings;
    std::vector<std::string> insecure_mirrors;
    std::vector<std::pair<std::string, std::string>> mirror_keyrings;  // URL prefix, keyring
    std::vector<std::string> distro_keyrings;  // the config's keyring for the distro
    bool verify = true;                        // false: the config's verify = false for the distro
};

// Adds a target's trust settings to a policy: its distro's keyrings (the config's, replaced by
// --keyring), mirror keyrings, insecure mirrors, verify = false.
void add_trust(TrustPolicy& policy, const TargetOptions& target);

// What a plugin's crawl is asked: the target's distro, arch, mirrors and --option pairs, and
// apt's source URIs. A malformed option, or one the plugin's describe does not declare, is a
// UsageError.
CrawlRequest crawl_request(PluginInstance& instance, const TargetOptions& target);

struct BuildCommandOptions {
    std::string module_src;
    std::vector<std::string> modules;  // --module
    std::string module_name;           // --module-name
    std::string out_dir = "out";
    std::string module_version;
    std::string builder = "auto";  // auto | docker | local
    std::string naming;            // a preset's name; "": probe-builder
    std::string naming_template;   // wins over naming
    std::vector<std::string> from_bundle;  // kernel bundles: built with no plugin, no network
    bool force = false;
    std::chrono::seconds build_timeout{900};
    std::string sign_key, sign_cert;  // both or neither: sign each module (module_sign.h)
};

struct ImagesCommandOptions {
    std::vector<std::string> names;  // empty: every definition
    std::string mirror;              // debootstrap mirror; empty: apt's
    bool force = false;
};

// The signer of --sign-key/--sign-cert (or a config's), null when both are empty. A key that is
// unreadable, holds no key, or is not the certificate's: a UsageError naming the file.
std::shared_ptr<const ModuleSigner> load_signer(const std::string& key, const std::string& cert);

int images_build_command(const GlobalOptions& global, const ImagesCommandOptions& images);
int images_list_command(const GlobalOptions& global, const std::string& output);

int plugins_command(const GlobalOptions& global, const std::string& output);
int crawl_command(const GlobalOptions& global, const TargetOptions& target, const std::string& output);
int batch_command(const GlobalOptions& global, const TargetOptions& target, const std::string& output);
int build_command(const GlobalOptions& global, const TargetOptions& target,
                  const BuildCommandOptions& build, const std::string& output);

// kbuild bundle: each selected release's header tree as bundle-<uname>.tgz in out_dir.
int bundle_command(const GlobalOptions& global, const TargetOptions& target, const std::string& out_dir,
                   const std::string& output);

// kbuild index merge A.json B.json ...: the shards' indexes as one, on stdout.
int index_merge_command(const std::vector<std::string>& files);

// The cache directory the flags and environment name.
std::filesystem::path default_cache_dir();

}  // namespace kbuild
