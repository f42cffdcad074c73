// kbuild's config file (TOML): each reader of it over the same hostile text.
#include "fuzz_input.h"

#include "app/config.h"
#include "serve/serve.h"
#include "targets/targets.h"

#include <kbuild/error.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static kbuild::fuzz::InputFile file;
    const std::string& path = file.with(data, size);
    const auto each = [&](auto&& read) {
        try {
            read();
        } catch (const kbuild::Error&) {}
    };
    each([&] {
        kbuild::TargetOptions target;
        target.distro = "debian";
        kbuild::apply_config(path, target);
    });
    each([&] { kbuild::read_sign_config(path); });
    each([&] { kbuild::read_cache_config(path); });
    each([&] {
        kbuild::ServeSettings settings;
        kbuild::read_serve_config(path, settings);
    });
    return 0;
}
