from setuptools import find_packages, setup

package_name = "gamgin_inspect"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        # the web entry of Foxglove Studio for the browser test (studio_web.py)
        ("share/" + package_name + "/web", ["web/index.html", "web/studio.js"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="gamgin team",
    maintainer_email="team@gamgin.dev",
    description="Foxglove bridge and RViz speech bubble",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "bridge_node = gamgin_inspect.bridge_node:main",
            "bubble_node = gamgin_inspect.bubble_node:main",
        ]
    },
)
