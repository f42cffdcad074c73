#include "plugin/host_services.h"

#include <kbuild/error.hpp>

#include <spdlog/spdlog.h>

#include <system_error>

namespace kbuild {
namespace {

// Strings handed to a plugin live until its next service call on the same thread.
thread_local std::string service_answer;

const HostServices& self(void* host) {
    return *static_cast<const HostServices*>(host);
}

void log(void* host, kb_log_level level, const char* message) {
    const auto& name = self(host).plugin_name();
    const char* text = message ? message : "";
    switch (level) {
        case KB_LOG_DEBUG: spdlog::debug("{}: {}", name, text); break;
        case KB_LOG_INFO: spdlog::info("{}: {}", name, text); break;
        case KB_LOG_WARN: spdlog::warn("{}: {}", name, text); break;
        default: spdlog::error("{}: {}", name, text); break;
    }
}

kb_status answer(const std::function<std::string(const std::string&)>& service, const char* request,
                 const char** out) noexcept {
    try {
        service_answer = service(request ? request : "");
        *out = service_answer.c_str();
        return KB_OK;
    } catch (const std::exception& e) {
        service_answer = e.what();
    } catch (...) {
        service_answer = "unknown error";
    }
    *out = service_answer.c_str();
    return KB_ERROR;
}

kb_status fetch(void* host, const char* request, const char** out) {
    return answer(self(host).context().fetch, request, out);
}

kb_status extract(void* host, const char* request, const char** out) {
    return answer(self(host).context().extract, request, out);
}

kb_status extract_image(void* host, const char* request, const char** out) {
    return answer(self(host).context().extract_image, request, out);
}

kb_status verify(void* host, const char* request, const char** out) {
    const HostServices& services = self(host);
    return answer(
        [&](const std::string& r) { return services.context().verify(r, services.distro(), services.handed()); },
        request, out);
}

kb_status cache_dir(void* host, const char** out) {
    const auto& services = self(host);
    const auto dir = services.context().cache_dir / "plugins" / services.plugin_name();
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
        service_answer = dir.string() + ": " + ec.message();
        *out = service_answer.c_str();
        return KB_ERROR;
    }
    service_answer = dir.string();
    *out = service_answer.c_str();
    return KB_OK;
}

}  // namespace

HostServices::HostServices(std::string plugin_name, const HostContext& context)
    : plugin_name_(std::move(plugin_name)), context_(context) {
    table_.struct_size = sizeof(kb_host_services);
    table_.host = this;
    table_.log = &log;
    table_.fetch = context_.fetch ? &fetch : nullptr;
    table_.extract = context_.extract ? &extract : nullptr;
    table_.cache_dir = &cache_dir;
    table_.extract_image = context_.extract_image ? &extract_image : nullptr;
    table_.verify = context_.verify ? &verify : nullptr;
}

}  // namespace kbuild
