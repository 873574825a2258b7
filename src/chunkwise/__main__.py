from chunkwise.cli.main import main

main()
