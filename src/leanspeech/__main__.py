from leanspeech.cli import main

main()
