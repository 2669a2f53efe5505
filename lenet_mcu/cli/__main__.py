from lenet_mcu.cli import main

main()
