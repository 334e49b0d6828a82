from setuptools import find_packages, setup

package_name = "gamgin_wyoming"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="gamgin team",
    maintainer_email="team@gamgin.dev",
    description="gamgin's wake word, speech-to-text and voices as Wyoming services",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "wyoming_server = gamgin_wyoming.server:main",
        ]
    },
)
