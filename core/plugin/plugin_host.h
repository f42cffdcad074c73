// Loads distro plugins (libkbuild-*.so) with Boost.DLL, checks their ABI once, and hands out
// instances whose hooks speak the SDK's C++ types.
#pragma once

#include <kbuild/plugin_api.h>
#include <kbuild/types.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kbuild {

class HostServices;
struct HostContext;

// A plugin library that passed the ABI checks. Stays loaded for the life of the process.
class Plugin {
public:
    // distros: the ones this plugin serves here (an earlier plugin keeps any it also claims).
    Plugin(std::filesystem::path path, std::shared_ptr<void> library, const kb_plugin_api& api,
           std::vector<std::string> distros);

    const std::string& name() const { return name_; }
    const std::string& version() const { return version_; }
    const std::vector<std::string>& distros() const { return distros_; }
    const std::string& builder_family() const { return builder_family_; }
    const std::filesystem::path& path() const { return path_; }
    unsigned abi_major() const { return api_.abi_major; }
    unsigned abi_minor() const { return api_.abi_minor; }
    // The table as the host reads it: hooks newer than the plugin are null.
    const kb_plugin_api& api() const { return api_; }

    bool serves(const std::string& distro) const;

private:
    std::filesystem::path path_;
    std::shared_ptr<void> library_;
    kb_plugin_api api_;
    std::string name_, version_, builder_family_;
    std::vector<std::string> distros_;
};

// One instance of a plugin: create() on construction, destroy() on destruction. Not for use
// from two threads at once. Hooks throw kbuild::Error("<plugin>: <hook>: <why>").
class PluginInstance {
public:
    PluginInstance(const Plugin& plugin, const HostContext& context, const Json& config = {});
    ~PluginInstance();
    PluginInstance(const PluginInstance&) = delete;
    PluginInstance& operator=(const PluginInstance&) = delete;

    const Plugin& plugin() const { return plugin_; }
    // kbuild's cache (HostContext::cache_dir).
    const std::filesystem::path& cache_dir() const;

    bool can_crawl() const { return plugin_.api().crawl != nullptr; }
    ReleaseList crawl(const CrawlRequest& request);
    ReleaseList batch_packages(const BatchRequest& request);
    UnpackResult unpack(const UnpackRequest& request);
    KernelDir get_kernel_dir(const KernelDirRequest& request);
    ConfigHash hash_config(const ConfigHashRequest& request);
    // Empty when the plugin has no describe hook (ABI 1.0).
    std::optional<Description> describe();
    // The releases' indices newest first, by the plugin's version rules; empty when the plugin
    // has no order_releases hook (older than ABI 1.5). An answer that is not an order of every
    // index once is an Error.
    std::optional<std::vector<size_t>> order_releases(const std::string& distro, const std::vector<Release>& releases);

private:
    using Hook = kb_status (*)(kb_plugin*, const char*, const char**);
    template <class Result>
    Result call(Hook hook, const char* what, const std::string& request);

    const Plugin& plugin_;
    std::unique_ptr<HostServices> services_;
    kb_plugin* instance_ = nullptr;
};

// What a plugin's describe says (an instance made for the question alone); nullopt when it has
// no describe hook, or its describe fails (said in a warning: the plugin still works).
std::optional<Description> description_of(const Plugin& plugin);

// The targets a plugin serves here, each with its distro: those its describe lists (ABI 1.5)
// for the distros it serves here, and each served distro no listed target names, as itself.
// Without a description (no describe hook), every served distro is its own target.
std::vector<TargetInfo> served_targets(const Plugin& plugin, const std::optional<Description>& description);

// Why a file was not accepted as a plugin.
struct Refusal {
    std::filesystem::path path;
    std::string reason;

    // The one line a user sees: "<path>: refused: <reason>".
    std::string message() const;
};

class PluginHost {
public:
    // Loads every libkbuild-*.so in each directory, in order (files sorted by name within a
    // directory). Missing directories are skipped. Refusals and distro conflicts are logged as
    // warnings and kept for plugins().
    void load_directories(const std::vector<std::filesystem::path>& directories);

    // Loads one file; returns the refusal when it is not accepted.
    std::optional<Refusal> load_file(const std::filesystem::path& path);

    const std::vector<std::unique_ptr<Plugin>>& plugins() const { return plugins_; }
    const std::vector<Refusal>& refusals() const { return refusals_; }

    // The plugin serving a distro (the first loaded wins), or null.
    const Plugin* find(const std::string& distro) const;

    // Every distro served, sorted, for messages such as "unknown distro; known: ...".
    std::vector<std::string> known_distros() const;

    // The default search path: <dir of this executable>/../lib/kbuild (the installed layout and
    // the build tree share it), then the configured install directory when that differs.
    static std::vector<std::filesystem::path> default_directories();

private:
    std::vector<std::unique_ptr<Plugin>> plugins_;
    std::vector<Refusal> refusals_;
};

}  // namespace kbuild
