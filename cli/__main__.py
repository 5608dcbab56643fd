from simulsa.cli.app import main

main()
