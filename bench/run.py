from weightio.bench import main

main()
