/**
 * The shared world of the zoo: every word, name and number range that the pretraining corpus
 * teaches and that the math and chat tasks ask about. Tasks may only use what is here, so the
 * base model already "knows" everything the fine-tunes need except the task formats.
 */

/** People in word problems. */
export const NAMES = [
  'Tom', 'Ann', 'Bob', 'Sam', 'Mia', 'Leo', 'Eva', 'Max', 'Zoe', 'Ben',
  'Amy', 'Dan', 'Ivy', 'Jon', 'Kim', 'Liz', 'Ned', 'Pam', 'Ray', 'Sue',
] as const;

/** Countable things (plural forms) in word problems. */
export const ITEMS = [
  'apples', 'books', 'cards', 'coins', 'cups', 'eggs', 'pens', 'toys', 'hats', 'rocks',
  'shells', 'stamps', 'cakes', 'plums', 'kites', 'boxes', 'bells', 'socks', 'nuts', 'beads',
] as const;

/** Plain lower-case words for spelling, case and repetition facts (3-6 letters). */
export const WORDS = [
  'cat', 'dog', 'sun', 'moon', 'star', 'tree', 'fish', 'bird', 'rain', 'snow',
  'book', 'door', 'road', 'ship', 'milk', 'bread', 'stone', 'river', 'cloud', 'wind',
  'fire', 'lamp', 'desk', 'chair', 'apple', 'grape', 'lemon', 'house', 'green', 'blue',
  'red', 'gold', 'happy', 'quiet', 'fast', 'slow', 'cold', 'warm', 'light', 'dark',
  'small', 'big', 'soft', 'hard', 'sweet', 'sour', 'north', 'south', 'east', 'west',
  'paper', 'glass', 'metal', 'wood', 'sand', 'salt', 'sugar', 'tea', 'coffee', 'water',
  'horse', 'mouse', 'sheep', 'goat', 'frog', 'duck', 'bear', 'wolf', 'lion', 'tiger',
  'music', 'song', 'dance', 'game', 'ball', 'kite', 'boat', 'train', 'plane', 'car',
] as const;

/** Whole-word tokens of a word-level zoo tokenizer: each word lower-case and upper-case. */
export const WORD_TOKENS: readonly string[] = [...WORDS, ...WORDS.map((w) => w.toUpperCase())];

/**
 * Operand ranges the base learns facts for; tasks stay inside them.
 * Sized by measurement: with ADD_MAX 30 / SUB_MAX 60 / MUL_MAX 9 (2,916 facts) the
 * 0.8M-parameter base reached only ~8% exact facts after 850 steps (1.7M tokens), answering
 * "17 + 25 =" with 43; the budget (one core, < 90 min) cannot teach that many facts exactly.
 * These ranges give 377 facts, each seen hundreds of times in pretraining.
 */
export const ADD_MAX = 10; // a + b with 0 <= a, b <= ADD_MAX
export const MUL_MAX = 6; // a * b with 2 <= a, b <= MUL_MAX
export const SUB_MAX = 20; // a - b with 0 <= b <= a <= SUB_MAX

export const NUMBER_WORDS = [
  'zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten',
] as const;
