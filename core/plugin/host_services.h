// The services the host lends plugins (the kb_host_services table): log, fetch, extract,
// cache_dir, extract_image, verify. One table per plugin instance, so log lines and cache directories
// carry the plugin's name.
#pragma once

#include <kbuild/plugin_api.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace kbuild {

// What the host lends every plugin instance; shared, outlives the instances.
struct HostContext {
    // Root of kbuild's cache; a plugin's cache_dir is <cache_dir>/plugins/<name>.
    std::filesystem::path cache_dir;
    // Services as request JSON -> answer JSON; they throw kbuild::Error. Empty: not offered.
    std::function<std::string(const std::string&)> fetch;
    std::function<std::string(const std::string&)> extract;
    std::function<std::string(const std::string&)> extract_image;
    // verify also gets the distro being served (its keyrings are the default ones) and the
    // package files the host handed to the hook being called (unpack's), which may be checked
    // besides downloads.
    std::function<std::string(const std::string& request, const std::string& distro,
                              const std::vector<std::string>& handed)>
        verify;
};

class HostServices {
public:
    HostServices(std::string plugin_name, const HostContext& context);
    HostServices(const HostServices&) = delete;
    HostServices& operator=(const HostServices&) = delete;

    const kb_host_services* table() const { return &table_; }
    const std::string& plugin_name() const { return plugin_name_; }
    const HostContext& context() const { return context_; }

    // The distro of the hook being called (whose keyrings verify uses), and the package files
    // handed to it.
    void set_call(std::string distro, std::vector<std::string> handed = {}) {
        distro_ = std::move(distro);
        handed_ = std::move(handed);
    }
    const std::string& distro() const { return distro_; }
    const std::vector<std::string>& handed() const { return handed_; }

private:
    std::string plugin_name_;
    const HostContext& context_;
    std::string distro_;
    std::vector<std::string> handed_;
    kb_host_services table_{};
};

}  // namespace kbuild
