import type { Recipe } from './recipe.ts';
import { tinyMlpRecipes } from '../models/tiny-mlp.ts';
import { heavyRecipe } from '../models/heavy-conv.ts';
import { wideMlpRecipe } from '../models/wide-mlp.ts';
import { mnistRecipes } from '../mnist/export.ts';
import { badBuildRecipes } from '../bad-builds.ts';

/** Every model the kit can build, in build order. */
export const RECIPES: readonly Recipe[] = [...tinyMlpRecipes, ...mnistRecipes, ...badBuildRecipes, heavyRecipe, wideMlpRecipe];

export const MODEL_NAMES: readonly string[] = RECIPES.map((r) => r.name);
