from glob import glob

from setuptools import find_packages, setup

package_name = "gamgin"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    # launch/ and config/ live at the repository top (links here), installed to
    # share/gamgin so `ros2 launch gamgin bringup.launch.py` resolves on ROS machines.
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml") + glob("config/*.json")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="gamgin team",
    maintainer_email="team@gamgin.dev",
    description="gamgin bringup and command line",
    license="Apache-2.0",
    entry_points={"console_scripts": ["gamgin = gamgin.cli:main"]},
)
