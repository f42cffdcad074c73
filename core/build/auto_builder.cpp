#include "build/auto_builder.h"

#include "build/builder.h"
#include "build/docker.h"
#include "build/images.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

namespace fs = std::filesystem;

namespace kbuild {

fs::path docker_socket() {
    const char* host = std::getenv("DOCKER_HOST");
    const std::string prefix = "unix://";
    if (host && std::string(host).rfind(prefix, 0) == 0) return std::string(host).substr(prefix.size());
    return "/var/run/docker.sock";
}

std::unique_ptr<Builder> make_builder(const std::string& wanted, std::unique_ptr<Docker>& docker,
                                      const std::string& family) {
    if (wanted == "local") return std::make_unique<LocalBuilder>();
    const fs::path socket = docker_socket();
    if (!docker) docker = std::make_unique<Docker>(socket);
    if (!docker->ping()) {
        if (wanted == "docker")
            throw Error("docker: the daemon at " + socket.string() +
                        " does not answer (start dockerd, or use --builder local)");
        spdlog::info("builder: local (auto: the Docker daemon at {} does not answer)", socket.string());
        return std::make_unique<LocalBuilder>();
    }
    std::vector<BuilderImage> images = list_builder_images(*docker);
    if (images.empty()) {
        if (wanted == "docker") throw Error("docker: no kbuild builder images (run kbuild images build)");
        spdlog::info("builder: local (auto: Docker answers but has no builder images; run kbuild images build)");
        return std::make_unique<LocalBuilder>();
    }
    spdlog::info("builder: docker ({}{} builder images)", wanted == "auto" ? "auto: the daemon answers; " : "",
                 images.size());
    return std::make_unique<DockerBuilder>(*docker, std::move(images), family);
}

}  // namespace kbuild
