from setuptools import find_packages, setup

package_name = "gamgin_devices"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={package_name: ["sentences/*.yaml", "bench_commands.yaml",
                                 "dev_commands.yaml", "heldout_commands.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="gamgin team",
    maintainer_email="team@gamgin.dev",
    description="Home appliances as ROS services, local zh/en intents and local music",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "devices_node = gamgin_devices.node:main",
            "music_node = gamgin_devices.music_node:main",
        ]
    },
)
